"""The one place where backends are chosen from settings: vector store, graph store, embedder, generator, and the
optional entailment check; `Components` builds them lazily for a service.

Each factory imports its backend lazily, so choosing the embedded defaults never imports a server client (and the
reverse). Everything else receives these components typed by their Protocol.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from graph.store import GraphStore
from rag.core.errors import InvalidInput, ModelUnavailable, StoreUnavailable
from rag.core.settings import Settings
from rag.retrieval.embedding import Embedder
from rag.stores.base import VectorStore

if TYPE_CHECKING:
    from rag.answer.grounding import Entailment
    from rag.answer.pipeline import AnswerPipeline
    from rag.generation.base import Generator
    from rag.retrieval.retriever import Retriever

log = logging.getLogger(__name__)


def make_vector_store(s: Settings, read_only: bool = False) -> VectorStore:
    """read_only: for serving (API, UI, ask); the embedded engine then reads a private copy, next to other readers."""
    if s.vector_backend == "qdrant":
        from rag.stores.server import QdrantServerStore

        key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
        return QdrantServerStore(url=s.qdrant_url, api_key=key, collection=s.collection,
                                 shards=s.qdrant_shards, replicas=s.qdrant_replicas)
    from rag.stores.edge import EdgeVectorStore

    return EdgeVectorStore(s.edge_path, read_only=read_only)


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
        passage_max_tokens=s.embedding_passage_max_tokens,
        dtype=s.embedding_dtype,
        batch_size=s.embedding_batch_size,
        device=s.embedding_device,
        cache_path=s.embedding_cache_file,
        backend=s.embedding_backend,
        quantize=s.embedding_quantize,
        home=s.machine_cache,
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


class Components:
    """The components one service shares with every caller, built lazily (thread-safe) from settings or injected.

    Serving never creates stores: an embedded KB that was never ingested is a StoreUnavailable error, not an empty
    answer, and the embedded graph is opened read-only (the service only reads).
    """

    def __init__(self, settings: Settings, *, vstore: VectorStore | None = None, gstore: GraphStore | None = None,
                 embedder: Embedder | None = None, generator: Generator | None = None) -> None:
        self.settings = settings
        self._v, self._g, self._e = vstore, gstore, embedder
        self._gen, self._gen_loaded = generator, generator is not None
        self._retriever: Retriever | None = None
        self._pipeline: AnswerPipeline | None = None
        self._lock = threading.RLock()

    def require_kb(self) -> None:
        s = self.settings
        embedded = ((s.edge_path, s.vector_backend == "edge"), (s.kuzu_path, s.graph_backend == "kuzu"))
        missing = [p for p, used in embedded if used and not p.exists()]
        if missing:
            raise StoreUnavailable(f"no knowledge base at {missing[0]}: run `drugrag ingest` first "
                                   f"(DRUGRAG_HOME={s.home})")

    def _once(self, attr: str, build: Callable[[], Any]) -> Any:
        if getattr(self, attr) is None:
            with self._lock:
                if getattr(self, attr) is None:
                    setattr(self, attr, build())
        return getattr(self, attr)

    @property
    def vstore(self) -> VectorStore:
        def build() -> VectorStore:
            self.require_kb()
            return make_vector_store(self.settings, read_only=True)  # serving only reads
        return cast("VectorStore", self._once("_v", build))

    @property
    def gstore(self) -> GraphStore:
        def build() -> GraphStore:
            self.require_kb()
            return make_graph_store(self.settings, read_only=True)  # serving only reads
        return cast("GraphStore", self._once("_g", build))

    @property
    def embedder(self) -> Embedder:
        return cast("Embedder", self._once("_e", lambda: make_embedder(self.settings)))

    @property
    def generator(self) -> Generator | None:
        if not self._gen_loaded:
            with self._lock:
                if not self._gen_loaded:
                    self._gen, self._gen_loaded = make_generator(self.settings), True
        return self._gen

    @property
    def retriever(self) -> Retriever:
        return cast("Retriever", self._once("_retriever", self._make_retriever))

    def _make_retriever(self) -> Retriever:
        from rag.retrieval.intent import IntentClassifier, RequestClassifier
        from rag.retrieval.lexicon import read_lexicon
        from rag.retrieval.linking import EntityLinker, load_brands, load_synonyms, load_zh_en
        from rag.retrieval.retriever import Retriever

        t, s, g = time.perf_counter(), self.settings, self.gstore
        linker = EntityLinker(g.names("Drug"), g.names("Disease"), g.drug_label_index(),
                              {**load_brands(), **load_zh_en()},
                              load_synonyms(), kb_words=read_lexicon(s.home))
        # the hash test embedder has no semantics: with it, questions are routed by the exact cues alone
        semantic = self.embedder.name != "hash"
        cache = s.home / "cache"
        r = Retriever(self.vstore, g, self.embedder, linker, s.top_k, s.prefetch,
                      classifier=IntentClassifier(self.embedder, cache_dir=cache) if semantic else None,
                      requests=RequestClassifier(self.embedder, cache_dir=cache) if semantic else None)
        log.info("retriever ready in %.2f s", time.perf_counter() - t)
        return r

    @property
    def pipeline(self) -> AnswerPipeline:
        def build() -> AnswerPipeline:
            from rag.answer.pipeline import AnswerPipeline, make_drug_mentions

            r = self.retriever
            return AnswerPipeline(self.generator, suggest=r.suggest, prefix_candidates=r.linker.prefix_candidates,
                                  drug_mentions=make_drug_mentions(r.linker.link),
                                  entailment=make_entailment(self.settings))
        return cast("AnswerPipeline", self._once("_pipeline", build))

    def close(self) -> None:
        for x in (self._v, self._g):
            if x is not None:
                x.close()
        self._v = self._g = None
        self._retriever = self._pipeline = None


def make_entailment(s: Settings) -> Entailment | None:
    """The optional entailment check of generated facts (off unless DRUGRAG_ENTAILMENT_MODEL names weights)."""
    if not s.entailment_model:
        return None
    from rag.answer.entailment import CrossEncoderEntailment

    return CrossEncoderEntailment(s.entailment_model, threshold=s.entailment_threshold)
