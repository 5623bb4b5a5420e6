"""VectorStore on Qdrant server through qdrant-client (same semantics as the embedded EdgeVectorStore).

Also works on qdrant-client's local mode (`QdrantClient(":memory:")` / `path=`), which speaks the server's API
in pure Python: used by the contract tests. Local mode ignores payload indexes (filters still work, by scan)
and applies the IDF modifier from live statistics; the server applies the same formula.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
from qdrant_client import QdrantClient
from qdrant_client import models as m
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag.core.errors import StoreUnavailable
from rag.stores.base import ChunkPoint, Hit, SearchFilter, SparseVec, hybrid_search, stable
from rag.stores.edge import DENSE, KEYWORD_FIELDS, SPARSE, _empty_condition, _values

T = TypeVar("T")
DEFAULT_URL = "http://localhost:6333"


def server_filter(flt: SearchFilter | None) -> m.Filter | None:
    if flt is None:
        return None
    must: list[m.Condition] = []
    for key, vals in (("label_id", flt.label_ids), ("drug_ids", flt.drug_ids), ("section", flt.sections)):
        if vals is not None:
            must.append(m.FieldCondition(key=key, match=m.MatchAny(any=_values(vals))))
    if flt.language is not None:
        must.append(m.FieldCondition(key="language", match=m.MatchValue(value=flt.language)))
    return m.Filter(must=must) if must else None


def _sparse(v: SparseVec) -> m.SparseVector:
    return m.SparseVector(indices=list(v.indices), values=[float(x) for x in v.values])


class QdrantServerStore:
    """VectorStore on a Qdrant collection (`collection`) of a server at `url`, or on a given `client`."""

    def __init__(self, url: str | None = None, api_key: str | None = None, collection: str = "drug_chunks",
                 client: QdrantClient | None = None, timeout: int = 30, upsert_batch: int = 256,
                 shards: int = 1, replicas: int = 1) -> None:
        self.collection = collection
        self.upsert_batch = upsert_batch
        self.shards, self.replicas = shards, replicas  # used when this store creates the collection
        if client is not None:
            self.url = url or "(given client)"
            self.client = client
        else:
            self.url = url or DEFAULT_URL
            try:
                self.client = QdrantClient(url=self.url, api_key=api_key, timeout=timeout,
                                           check_compatibility=False)
            except Exception as e:
                raise StoreUnavailable(f"Qdrant server at {self.url} is unavailable: {e}") from e
        self._exists: bool | None = None

    # -- error mapping -------------------------------------------------------------------------------------

    def _unavailable(self, e: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"Qdrant server at {self.url} is unavailable: {e}")

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs) with transport failures mapped to StoreUnavailable."""
        try:
            return fn(*args, **kwargs)
        except UnexpectedResponse as e:
            status = e.status_code or 0
            if status == 404:
                self._exists = False
                raise StoreUnavailable(
                    f"collection {self.collection!r} does not exist on the Qdrant server at {self.url}: "
                    "run `drugrag ingest` first"
                ) from e
            if status >= 500 or status in (401, 403):
                raise self._unavailable(e) from e
            raise
        except (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError) as e:
            raise self._unavailable(e) from e

    def _collection_exists(self) -> bool:
        if not self._exists:
            self._exists = self._call(self.client.collection_exists, self.collection)
        return bool(self._exists)

    def _need(self) -> None:
        if not self._collection_exists():
            raise StoreUnavailable(
                f"collection {self.collection!r} does not exist on the Qdrant server at {self.url}: "
                "run `drugrag ingest` first"
            )

    # -- VectorStore -----------------------------------------------------------------------------------------

    def ensure_collection(self, dim: int) -> None:
        if self._collection_exists():
            info = self._call(self.client.get_collection, self.collection)
            vectors = info.config.params.vectors
            have = vectors.get(DENSE) if isinstance(vectors, dict) else None
            sparse = info.config.params.sparse_vectors or {}
            if have is None or SPARSE not in sparse:
                raise StoreUnavailable(
                    f"collection {self.collection!r} on {self.url} lacks the named vectors "
                    f"{DENSE!r} and {SPARSE!r}: it was not made by drugrag; use another collection name"
                )
            if have.size != dim:
                raise StoreUnavailable(
                    f"collection {self.collection!r} on {self.url} holds {have.size}-dimensional dense vectors "
                    f"but the embedder makes {dim}-dimensional ones; re-ingest into a fresh collection"
                )
            indexed = set(info.payload_schema or {})
        else:
            self._call(
                self.client.create_collection,
                self.collection,
                vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE)},
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
                shard_number=self.shards,
                replication_factor=self.replicas,
            )
            self._exists = True
            indexed = set()
        with warnings.catch_warnings():  # local mode: "Payload indexes have no effect in the local Qdrant"
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for key in KEYWORD_FIELDS:
                if key not in indexed:
                    self._call(self.client.create_payload_index, self.collection, key,
                               m.PayloadSchemaType.KEYWORD, wait=True)

    def upsert(self, points: Sequence[ChunkPoint]) -> None:
        self._need()
        for i in range(0, len(points), self.upsert_batch):
            batch = [
                m.PointStruct(id=p.id, vector={DENSE: list(p.dense), SPARSE: _sparse(p.sparse)}, payload=p.payload)
                for p in points[i : i + self.upsert_batch]
            ]
            self._call(self.client.upsert, self.collection, batch, wait=True)

    def delete_label(self, label_id: str) -> int:
        if not self._collection_exists():
            return 0
        flt = m.Filter(must=[m.FieldCondition(key="label_id", match=m.MatchValue(value=label_id))])
        n = self._call(self.client.count, self.collection, count_filter=flt, exact=True).count
        if n:
            self._call(self.client.delete, self.collection, points_selector=m.FilterSelector(filter=flt), wait=True)
        return int(n)

    def _query(self, **kw: Any) -> list[Hit]:
        res = self._call(self.client.query_points, self.collection, with_payload=True, **kw)
        return stable([Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in res.points])

    def search_dense(self, vector: Sequence[float], limit: int, flt: SearchFilter | None = None) -> list[Hit]:
        self._need()
        if _empty_condition(flt):
            return []
        return self._query(query=list(vector), using=DENSE, query_filter=server_filter(flt), limit=limit)

    def probe(self, vector: Sequence[float]) -> None:
        self._need()
        with warnings.catch_warnings():  # local mode: "Local mode performs exact (brute-force) search" anyway
            warnings.filterwarnings("ignore", message="Local mode performs exact")
            self._query(query=list(vector), using=DENSE, limit=1, search_params=m.SearchParams(exact=True))

    def search_sparse(self, vector: SparseVec, limit: int, flt: SearchFilter | None = None) -> list[Hit]:
        self._need()
        if _empty_condition(flt) or not vector.indices:
            return []
        return self._query(query=_sparse(vector), using=SPARSE, query_filter=server_filter(flt), limit=limit)

    def search_hybrid(self, dense: Sequence[float], sparse: SparseVec, limit: int,
                      flt: SearchFilter | None = None, prefetch: int = 50) -> list[Hit]:
        return hybrid_search(self, dense, sparse, limit, flt, prefetch)  # fused here, not by the engine

    def _scroll(self, flt: SearchFilter | None, batch: int, with_payload: Any) -> Iterator[dict[str, Any]]:
        if not self._collection_exists() or _empty_condition(flt):
            return
        f = server_filter(flt)
        offset: Any = None
        while True:
            records, offset = self._call(self.client.scroll, self.collection, scroll_filter=f, limit=batch,
                                         offset=offset, with_payload=with_payload, with_vectors=False)
            for r in records:
                yield dict(r.payload or {})
            if offset is None or not records:
                return

    def scroll(self, flt: SearchFilter | None = None, batch: int = 1000) -> Iterator[dict[str, Any]]:
        return self._scroll(flt, batch, True)

    def label_hashes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self._scroll(None, 5000, ["label_id", "label_hash"]):
            if "label_id" in p:
                out[p["label_id"]] = p.get("label_hash", "")
        return out

    def count(self, flt: SearchFilter | None = None) -> int:
        if not self._collection_exists() or _empty_condition(flt):
            return 0
        f = server_filter(flt)
        return int(self._call(self.client.count, self.collection, count_filter=f, exact=True).count)

    def disk_bytes(self) -> int | None:
        return None

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass

    def __enter__(self) -> QdrantServerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
