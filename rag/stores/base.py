"""The VectorStore protocol.

Each point is one chunk of one label section. Two named vectors: `dense` (the embedder's output, cosine) and
`sparse` (keyword term weights from rag.retrieval.sparse; the store applies IDF, so hybrid dense+keyword retrieval
fused by reciprocal rank fusion runs inside the store, identically on the embedded engine and on Qdrant server).

Chunk payload keys (all set by rag.ingest):
  label_id, label_hash, version, title, language, source, source_file,
  names (list of norm names), drug_ids (list of base names = graph Drug ids), generic_ids (base names of
  the generic names only), effective_date, section_idx (position of the section in the label),
  section (canonical key), section_name (original name), chunk_index, n_chunks, start, end, text
Chunks of a section tile it exactly: ''.join(texts by chunk_index) == section text, and
section_text[start:end] == text, so a quote can be checked against the stored section.
Searches return hits by score, best first, and hits of equal score by point id (`stable`). Hybrid search fuses the
dense and the keyword lists here (`rrf`), not in the engine: identical passages (the same text in several
manufacturers' labels) tie in each list, reciprocal rank fusion ties often (rank 1 + 2 and rank 2 + 1), and the
engine orders a tie differently in each process, so the same question quoted another passage from one run to the
next. Each list is read twice as deep as it is used, so that a tie at its cut is cut by point id too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class SparseVec:
    indices: list[int]
    values: list[float]


@dataclass(slots=True)
class ChunkPoint:
    id: str  # a UUID string (deterministic: uuid5 of label id, section, chunk index)
    dense: list[float]
    sparse: SparseVec
    payload: dict[str, Any]


@dataclass(slots=True)
class SearchFilter:
    """All given conditions must hold; None means no condition."""

    label_ids: Sequence[str] | None = None
    drug_ids: Sequence[str] | None = None  # any of these in payload drug_ids
    sections: Sequence[str] | None = None  # any of these canonical keys
    language: str | None = None


@dataclass(slots=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


RRF_K = 2  # Qdrant's default for its RRF fusion: score = Σ 1/(k + rank0)


def stable(hits: list[Hit]) -> list[Hit]:
    """Hits best first, ties by point id: the same query gives the same order on every call and backend."""
    return sorted(hits, key=lambda h: (-h.score, h.id))


def rrf(lists: Sequence[list[Hit]], limit: int, depth: int, k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion of ranked lists (each cut to `depth` after a stable sort): Σ 1/(k + rank0)."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits in lists:
        for rank, h in enumerate(stable(hits)[:depth]):
            scores[h.id] = scores.get(h.id, 0.0) + 1.0 / (k + rank)
            first.setdefault(h.id, h)
    return stable([Hit(i, sc, first[i].payload) for i, sc in scores.items()])[:limit]


def hybrid_search(store: VectorStore, dense: Sequence[float], sparse: SparseVec, limit: int,
                  flt: SearchFilter | None, prefetch: int) -> list[Hit]:
    """`search_hybrid` of every backend: its dense and keyword lists, each read twice as deep as used, fused by
    `rrf` (module note above)."""
    n = max(prefetch, limit)
    return rrf([store.search_dense(dense, 2 * n, flt), store.search_sparse(sparse, 2 * n, flt)], limit, n)


@runtime_checkable
class VectorStore(Protocol):
    def ensure_collection(self, dim: int) -> None:
        """Create the collection (dense `dim` cosine + sparse with IDF modifier) and payload indexes if missing;
        raise StoreUnavailable if an existing collection has another dimension."""

    def upsert(self, points: Sequence[ChunkPoint]) -> None: ...

    def delete_label(self, label_id: str) -> int:
        """Delete every chunk of a label; returns how many were deleted."""

    def search_dense(self, vector: Sequence[float], limit: int, flt: SearchFilter | None = None) -> list[Hit]: ...

    def search_sparse(self, vector: SparseVec, limit: int, flt: SearchFilter | None = None) -> list[Hit]: ...

    def search_hybrid(
        self, dense: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None = None, prefetch: int = 50
    ) -> list[Hit]:
        """Dense and sparse candidates (prefetch each) fused by reciprocal rank fusion."""

    def scroll(self, flt: SearchFilter | None = None, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every payload matching the filter (no vectors)."""

    def label_hashes(self) -> dict[str, str]:
        """label_id → label_hash over all chunks."""

    def count(self, flt: SearchFilter | None = None) -> int: ...

    def probe(self, vector: Sequence[float]) -> None:
        """Readiness: one exact dense query over every stored vector (a damaged segment fails here); raises
        StoreUnavailable."""

    def disk_bytes(self) -> int | None:
        """Bytes on disk for embedded stores; None for servers."""

    def close(self) -> None: ...
