"""The one place where backends are chosen from settings: vector store, graph store, embedder, generator.

Each factory imports its backend lazily, so choosing the embedded defaults never imports a server client (and the
reverse). Everything else receives these components typed by their Protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph.store import GraphStore
from rag.core.errors import InvalidInput, ModelUnavailable
from rag.core.settings import Settings
from rag.retrieval.embedding import Embedder
from rag.stores.base import VectorStore

if TYPE_CHECKING:
    from rag.generation.base import Generator


def make_vector_store(s: Settings) -> VectorStore:
    if s.vector_backend == "qdrant":
        from rag.stores.server import QdrantServerStore

        key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
        return QdrantServerStore(url=s.qdrant_url, api_key=key, collection=s.collection)
    from rag.stores.edge import EdgeVectorStore

    return EdgeVectorStore(s.edge_path)


def make_graph_store(s: Settings, read_only: bool = False) -> GraphStore:
    if s.graph_backend == "neo4j":
        from graph.neo4j_store import Neo4jGraphStore

        return Neo4jGraphStore(s.neo4j_uri, s.neo4j_user, s.neo4j_password.get_secret_value(), s.neo4j_database)
    from graph.embedded import KuzuGraphStore

    return KuzuGraphStore(s.kuzu_path, read_only=read_only)


def make_embedder(s: Settings) -> Embedder:
    if s.embedding_model == "hash":  # deterministic smoke/test backend: no model, no quality (see HashEmbedder)
        from rag.retrieval.embedding import HashEmbedder

        return HashEmbedder()
    from rag.retrieval.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        s.embedding_model_path,
        query_prompt=s.embedding_query_prompt,
        passage_prompt=s.embedding_passage_prompt,
        max_seq_length=s.embedding_max_seq_length,
        dtype=s.embedding_dtype,
        batch_size=s.embedding_batch_size,
        device=s.embedding_device,
        cache_path=s.home / "cache" / "embeddings.sqlite",
        backend=s.embedding_backend,
        quantize=s.embedding_quantize,
        home=s.home,
        threads=s.embedding_threads,
    )


def make_generator(s: Settings) -> Generator | None:
    """The configured generator, or None for the extractive builder."""
    kind = s.generator
    if kind == "extractive":
        return None
    if kind == "transformers":
        from rag.generation.in_process import TransformersGenerator

        if not s.generator_model:
            raise ModelUnavailable("generator=transformers needs generator_model (a local model directory)")
        return TransformersGenerator(s.generator_model, adapter=s.generator_adapter or None,
                                     prompt_format=s.generator_prompt_format,
                                     max_new_tokens=s.generator_max_new_tokens)
    if kind == "openai":
        from rag.generation.openai_compatible import OpenAIGenerator

        return OpenAIGenerator(s.generator_url, s.generator_model or None,
                               s.generator_api_key.get_secret_value(), s.generator_timeout_s,
                               max_new_tokens=s.generator_max_new_tokens)
    raise InvalidInput(f"unknown generator {kind!r}")
