"""VectorStore on qdrant-edge (Qdrant's embedded, in-process engine): one shard directory, one process.

Layout under `path`: the engine's `edge_config.json`, `wal/`, `segments/`, plus our `.drugrag.lock`.

Quirks of qdrant_edge 0.9 that this class hides:
  * a shard is opened with `EdgeShard.create(path, config)` (fails when segments exist) or `EdgeShard.load(path)`;
    there is no "collection": the dense dimension is fixed in `edge_config.json` at creation;
  * the engine flock()s its WAL: a second open of the same path, in this or another process, fails with a bare
    `Exception("... Can't init WAL: Kind(WouldBlock)")`. We also take our own flock on `.drugrag.lock` when the
    store is constructed, so the path is owned before the shard exists (e.g. `drugrag serve` on an empty path);
  * point ids come back as `uuid.UUID` (we return `str`); `scroll` returns `{}` payloads unless asked;
  * every engine error is a plain `Exception` whose message starts "Service runtime error: ...";
  * writes are WAL-durable at once; `optimize()` (HNSW build, segment merge) runs only when called, blocking;
  * the WAL preallocates two 32 MiB sparse files: `disk_bytes` counts allocated blocks, not apparent sizes;
  * a damaged segment (e.g. a truncated `chunk_0.mmap`) still loads and counts, and fails only in a query
    ("vector N is not readable"): every engine call here maps such errors to StoreUnavailable (HTTP 503).

`read_only=True` (what serving uses) cannot share the shard itself — the engine has no read-only open — so it loads
a private copy taken under a shared lock; see rag/stores/edge_snapshot.py for why and how.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    MatchAny,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    PayloadSelector,
    Point,
    Query,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    SparseVector,
    UpdateOperation,
)

from rag.core.errors import StoreUnavailable
from rag.stores import edge_snapshot
from rag.stores.base import ChunkPoint, Hit, SearchFilter, SparseVec, hybrid_search, stable

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "sparse"
KEYWORD_FIELDS = ("label_id", "drug_ids", "section", "language", "source")
LOCK_FILE = ".drugrag.lock"
CONFIG_FILE = "edge_config.json"
T = TypeVar("T")


def _values(v: Sequence[str] | str) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _empty_condition(flt: SearchFilter | None) -> bool:
    """True when a given list condition is empty, so nothing can match (answered without a query)."""
    if flt is None:
        return False
    return any(v is not None and len(_values(v)) == 0 for v in (flt.label_ids, flt.drug_ids, flt.sections))


def edge_filter(flt: SearchFilter | None) -> Filter | None:
    if flt is None:
        return None
    must: list[Any] = []
    for key, vals in (("label_id", flt.label_ids), ("drug_ids", flt.drug_ids), ("section", flt.sections)):
        if vals is not None:
            must.append(FieldCondition(key, match=MatchAny(_values(vals))))
    if flt.language is not None:
        must.append(FieldCondition("language", match=MatchValue(flt.language)))
    return Filter(must=must) if must else None


def _sparse(v: SparseVec) -> SparseVector:
    return SparseVector(list(v.indices), [float(x) for x in v.values])


class EdgeVectorStore:
    """VectorStore on an embedded qdrant-edge shard at `path` (created by `ensure_collection`); `read_only=True`
    serves an existing shard from a private copy, next to other readers (and fails while a writer holds it)."""

    def __init__(self, path: Path | str, upsert_batch: int = 256, read_only: bool = False) -> None:
        self.path = Path(path)
        self.upsert_batch = upsert_batch
        self.read_only = read_only
        self._shard: EdgeShard | None = None
        self._lock: IO[str] | None = None
        self._copy: Path | None = None
        self._closed = False
        if read_only:
            self._open_reader()
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK_FILE, "a")
        except OSError as e:
            raise StoreUnavailable(f"cannot open the vector store at {self.path}: {e}") from e
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self._lock.close()
            self._lock = None
            raise self._busy(e) from e
        try:
            if (self.path / CONFIG_FILE).exists():
                self._shard = self._open(lambda: EdgeShard.load(str(self.path)))
        except BaseException:
            self._release_lock()
            raise

    # -- opening / closing ---------------------------------------------------------------------------------

    def _open_reader(self) -> None:
        if not (self.path / CONFIG_FILE).exists():
            raise StoreUnavailable(f"no vector index at {self.path}: run `drugrag ingest` first")
        self._copy = copy = edge_snapshot.copy_for_reading(self.path, LOCK_FILE, self._busy)
        try:
            self._shard = self._open(lambda: EdgeShard.load(str(copy)))
        except BaseException:
            edge_snapshot.remove_copy(copy)
            self._copy = None
            raise

    def _busy(self, cause: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"the vector store at {self.path} is in use: another process (e.g. a running `drugrag serve` or "
            f"`drugrag ingest`) holds it open; stop it or use another path ({cause})"
        )

    def _open(self, opener: Callable[[], EdgeShard]) -> EdgeShard:
        try:
            shard: EdgeShard = opener()
        except Exception as e:
            if "WouldBlock" in str(e) or "lock" in str(e).lower():
                raise self._busy(e) from e
            raise StoreUnavailable(f"cannot open the vector store at {self.path}: {e}") from e
        return shard

    def _release_lock(self) -> None:
        if self._lock is not None:
            try:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            finally:
                self._lock.close()
                self._lock = None

    def close(self) -> None:
        """Flush and close the shard, then release the path (idempotent); a reader's copy is removed."""
        shard, self._shard = self._shard, None
        self._closed = True
        try:
            if shard is not None:
                if not self.read_only:
                    shard.flush()
                shard.close()
        finally:
            self._release_lock()
            copy, self._copy = self._copy, None
            if copy is not None:
                edge_snapshot.remove_copy(copy)

    def __enter__(self) -> EdgeVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten store must not keep the path locked
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @property
    def exists(self) -> bool:
        return self._shard is not None

    def dim(self) -> int | None:
        """Dense dimension fixed at creation, or None before `ensure_collection`."""
        try:
            cfg = json.loads((self.path / CONFIG_FILE).read_text())
            return int(cfg["vectors"][DENSE]["size"])
        except (OSError, KeyError, ValueError, TypeError):
            return None

    def _open_or_closed(self) -> EdgeShard | None:
        """The shard, None when no index exists yet; raises when the store was closed."""
        if self._closed or (self._lock is None and not self.read_only):
            raise StoreUnavailable(f"the vector store at {self.path} is closed")
        return self._shard

    def _writable(self) -> None:
        if self.read_only:
            raise StoreUnavailable(f"the vector store at {self.path} is open read-only; writing needs a writer "
                                   "(`drugrag ingest`)")

    def _engine(self, what: str, fn: Callable[[], T]) -> T:
        """fn() with the engine's plain Exceptions (damaged segments, I/O) mapped to StoreUnavailable."""
        try:
            return fn()
        except StoreUnavailable:
            raise
        except Exception as e:
            log.error("vector store %s failed to %s: %s", self.path, what, e)
            raise StoreUnavailable(f"the vector store at {self.path} failed to {what}: {e}") from e

    def _need(self) -> EdgeShard:
        shard = self._open_or_closed()
        if shard is None:
            raise StoreUnavailable(f"no vector index at {self.path}: run `drugrag ingest` first")
        return shard

    # -- VectorStore -------------------------------------------------------------------------------------------

    def ensure_collection(self, dim: int) -> None:
        self._writable()
        if self._lock is None:
            raise StoreUnavailable(f"the vector store at {self.path} is closed")
        if self._shard is None:
            config = EdgeConfig(
                vectors={DENSE: EdgeVectorParams(size=dim, distance=Distance.Cosine)},
                sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            )
            self._shard = self._open(lambda: EdgeShard.create(str(self.path), config))
        else:
            have = self.dim()
            if have != dim:
                raise StoreUnavailable(
                    f"the vector store at {self.path} holds {have}-dimensional dense vectors but the embedder "
                    f"makes {dim}-dimensional ones; re-ingest into a fresh path (or delete {self.path})"
                )
        schema = self._shard.info().payload_schema
        for key in KEYWORD_FIELDS:
            if key not in schema:
                self._shard.update(UpdateOperation.create_field_index(key, PayloadSchemaType.Keyword))

    def upsert(self, points: Sequence[ChunkPoint]) -> None:
        self._writable()
        shard = self._need()
        for i in range(0, len(points), self.upsert_batch):
            batch = [
                Point(p.id, {DENSE: list(p.dense), SPARSE: _sparse(p.sparse)}, p.payload)
                for p in points[i : i + self.upsert_batch]
            ]
            shard.update(UpdateOperation.upsert_points(batch))

    def delete_label(self, label_id: str) -> int:
        self._writable()
        if self._open_or_closed() is None:
            return 0
        flt = edge_filter(SearchFilter(label_ids=[label_id]))
        assert flt is not None
        shard = self._need()
        n = shard.count(CountRequest(exact=True, filter=flt))
        if n:
            shard.update(UpdateOperation.delete_points_by_filter(flt))
        return n

    def _query(self, request: QueryRequest) -> list[Hit]:
        shard = self._need()
        points = self._engine("search", lambda: shard.query(request))
        return stable([Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in points])

    def search_dense(self, vector: Sequence[float], limit: int, flt: SearchFilter | None = None) -> list[Hit]:
        self._need()
        if _empty_condition(flt):
            return []
        return self._query(
            QueryRequest(
                limit=limit, query=Query.Nearest(list(vector), using=DENSE), filter=edge_filter(flt),
                with_payload=True,
            )
        )

    def probe(self, vector: Sequence[float]) -> None:
        self._query(QueryRequest(limit=1, query=Query.Nearest(list(vector), using=DENSE),
                                 params=SearchParams(exact=True)))

    def search_sparse(self, vector: SparseVec, limit: int, flt: SearchFilter | None = None) -> list[Hit]:
        self._need()
        if _empty_condition(flt) or not vector.indices:
            return []
        return self._query(
            QueryRequest(
                limit=limit, query=Query.Nearest(_sparse(vector), using=SPARSE), filter=edge_filter(flt),
                with_payload=True,
            )
        )

    def search_hybrid(self, dense: Sequence[float], sparse: SparseVec, limit: int,
                      flt: SearchFilter | None = None, prefetch: int = 50) -> list[Hit]:
        return hybrid_search(self, dense, sparse, limit, flt, prefetch)  # fused here, not by the engine

    def _scroll(self, flt: SearchFilter | None, batch: int, with_payload: Any) -> Iterator[dict[str, Any]]:
        if self._open_or_closed() is None or _empty_condition(flt):
            return
        f = edge_filter(flt)
        offset: Any = None
        while True:
            req = ScrollRequest(offset=offset, limit=batch, filter=f, with_payload=with_payload, with_vector=False)
            shard = self._need()
            records, offset = self._engine("read", lambda: shard.scroll(req))  # noqa: B023 - called at once
            for r in records:
                yield dict(r.payload or {})
            if offset is None or not records:
                return

    def scroll(self, flt: SearchFilter | None = None, batch: int = 1000) -> Iterator[dict[str, Any]]:
        return self._scroll(flt, batch, True)

    def label_hashes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self._scroll(None, 5000, PayloadSelector.Include(["label_id", "label_hash"])):
            if "label_id" in p:
                out[p["label_id"]] = p.get("label_hash", "")
        return out

    def count(self, flt: SearchFilter | None = None) -> int:
        shard = self._open_or_closed()
        if shard is None or _empty_condition(flt):
            return 0
        req = CountRequest(exact=True, filter=edge_filter(flt))
        return int(self._engine("count", lambda: shard.count(req)))

    def disk_bytes(self) -> int:
        """Bytes allocated on disk under `path`, as `du` counts them (the WAL's 32 MiB files are sparse)."""
        total = 0
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                try:
                    st = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
        return total

    # -- extras ----------------------------------------------------------------------------------------------

    def optimize(self) -> bool:
        """Merge segments and build the HNSW / payload indexes (blocking; ingest calls it once at the end)."""
        self._writable()
        shard = self._need()
        t = time.perf_counter()
        changed = bool(shard.optimize())
        log.info("optimized vector store at %s in %.1f s (changed=%s)", self.path, time.perf_counter() - t, changed)
        return changed

    def flush(self) -> None:
        if not self.read_only:
            self._need().flush()

    def info(self) -> dict[str, int]:
        shard = self._need()
        i = self._engine("describe itself", shard.info)
        return {"points": i.points_count, "segments": i.segments_count, "indexed_vectors": i.indexed_vectors_count}

