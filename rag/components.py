"""The one place where backends are chosen from settings (vector store, graph store, embedder, generator)."""

from __future__ import annotations

from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.settings import Settings
from rag.stores.base import VectorStore


def make_vector_store(s: Settings) -> VectorStore:
    if s.vector_backend == "qdrant":
        from rag.stores.server import QdrantServerStore

        key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
        return QdrantServerStore(url=s.qdrant_url, api_key=key, collection=s.collection)
    from rag.stores.edge import EdgeVectorStore

    return EdgeVectorStore(s.edge_path)


def make_graph_store(s: Settings, read_only: bool = False):
    if s.graph_backend == "neo4j":
        from graph.neo4j_store import Neo4jGraphStore

        return Neo4jGraphStore(s.neo4j_uri, s.neo4j_user, s.neo4j_password.get_secret_value(), s.neo4j_database)
    from graph.embedded import KuzuGraphStore

    return KuzuGraphStore(s.kuzu_path, read_only=read_only)


def make_embedder(s: Settings) -> Embedder:
    return SentenceTransformerEmbedder(
        s.embedding_model_path,
        query_prompt=s.embedding_query_prompt,
        passage_prompt=s.embedding_passage_prompt,
        max_seq_length=s.embedding_max_seq_length,
        dtype=s.embedding_dtype,
        batch_size=s.embedding_batch_size,
        device=s.embedding_device,
        cache_path=s.home / "cache" / "embeddings.sqlite",
    )
