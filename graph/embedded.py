"""KuzuGraphStore: the GraphStore on kuzu, an embedded Cypher engine (one database file, no server).

Bulk writes are COPY FROM an Arrow table (only rows not yet present; existing ones are compared and updated in
parameterised batches), so a full DDInter + CMeKG load takes seconds. All query text lives in graph/cypher.py.

One read-write process per database: kuzu locks the file against other processes, and this module refuses a second
store on the same file inside one process too (kuzu does not lock that case and two writers would corrupt it).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kuzu
import pyarrow as pa  # kuzu's COPY scans Arrow tables; pandas 3 string columns crash it

from graph import cypher as C
from graph.store import EDGE_TYPES, NODE_TYPES, GEdge, GNode
from kb_loaders.model import Edge, Node
from rag.errors import InvalidInput, StoreUnavailable

log = logging.getLogger(__name__)

UPDATE_BATCH = 5_000
# below these sizes new rows go in with UNWIND … CREATE: COPY has a fixed cost of about 100 ms (more at commit)
COPY_MIN_NODES = 2_000
COPY_MIN_EDGES = 200
# upsert_labels switches from per-label statements to the COPY path at this many labels
_BULK_LABELS = 8

_open_lock = threading.Lock()
# resolved db file → the stores open on it (weak: a store dropped without close() frees its file, as kuzu does)
_open_paths: dict[str, list[weakref.ref[KuzuGraphStore]]] = {}


def _db_file(path: Path) -> Path:
    """kuzu 0.11 keeps a database in one file (plus `<file>.wal`); an existing directory gets `graph.kuzu` inside."""
    p = Path(path).expanduser()
    return p / "graph.kuzu" if p.is_dir() else p


class KuzuGraphStore:
    """GraphStore on a kuzu database file. `read_only=True` opens an existing database for reading (several
    read-only processes may share it while no read-write one holds it)."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = _db_file(Path(path))
        self.read_only = read_only
        self._lock = threading.RLock()
        self._closed = True
        self._key = str(self.path.resolve())
        with _open_lock:
            held = [st for ref in _open_paths.get(self._key, []) if (st := ref()) is not None and not st._closed]
            if held and (not read_only or not all(st.read_only for st in held)):
                raise StoreUnavailable(
                    f"kuzu graph database {self.path} is already open read-write in this process; "
                    "close that store first (one read-write handle per database)")
            if read_only and not self.path.exists():
                raise StoreUnavailable(f"kuzu graph database {self.path} does not exist (run ingest first)")
            try:
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = kuzu.Database(str(self.path), read_only=read_only)
                self._conn = kuzu.Connection(self._db)
            except (RuntimeError, OSError) as e:
                raise StoreUnavailable(_open_error(self.path, e)) from e
            _open_paths[self._key] = [*(weakref.ref(st) for st in held), weakref.ref(self)]
            self._closed = False
        try:
            if read_only:
                missing = set(NODE_TYPES) - set(self._tables())
                if missing:
                    raise StoreUnavailable(f"kuzu graph database {self.path} has no graph schema "
                                           f"(missing tables {sorted(missing)}); run ingest first")
            else:
                self.ensure_schema()
        except BaseException:
            self.close()
            raise

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _run(self, query: str, params: Mapping[str, Any] | None = None) -> kuzu.QueryResult:
        C.check_params(query, params)
        with self._lock:
            if self._closed:
                raise StoreUnavailable(f"kuzu graph store {self.path} is closed")
            res = self._conn.execute(query, dict(params or {}))
        if isinstance(res, list):  # several statements in one string: never sent by this module
            raise ValueError("one Cypher statement per call")
        return res

    def _rows(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        res = self._run(query, params)
        cols = res.get_column_names()
        out = [dict(zip(cols, row, strict=True)) for row in res.get_all()]
        res.close()
        return out

    def _columns(self, query: str, params: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
        """Column-wise result via Arrow: much faster than row tuples for whole-table reads."""
        res = self._run(query, params)
        cols = res.get_column_names()
        if not res.has_next():
            res.close()
            return {c: [] for c in cols}
        tab = res.get_as_arrow(chunk_size=1_000_000)
        res.close()
        return {c: tab.column(c).to_pylist() for c in cols}

    def _scalar(self, query: str, params: Mapping[str, Any] | None = None) -> Any:
        rows = self._rows(query, params)
        return next(iter(rows[0].values())) if rows else None

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock:
            self._writable()
            self._run(C.KUZU_BEGIN)
            try:
                yield
            except BaseException:
                try:
                    self._run(C.KUZU_ROLLBACK)
                except RuntimeError:  # kuzu already rolled back after a failed statement
                    pass
                raise
            self._run(C.KUZU_COMMIT)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreUnavailable(f"kuzu graph database {self.path} is open read-only; writing needs read_only=False")

    def _tables(self) -> list[str]:
        return [r["name"] for r in self._rows(C.KUZU_SHOW_TABLES)]

    def _copy(self, table: str, columns: dict[str, list[Any]]) -> None:
        data = pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})
        self._run(C.kuzu_copy(table), {"data": data})

    def _batched(self, query: str, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), UPDATE_BATCH):
            self._run(query, {"rows": rows[i: i + UPDATE_BATCH]})

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with self._lock:
            if self.read_only:
                return
            for t in NODE_TYPES:
                self._run(C.kuzu_create_node_table(t))
            self._run(C.KUZU_CREATE_META)
            for e in EDGE_TYPES:
                self._run(C.kuzu_create_rel_table(e))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()
                self._db.close()
            finally:
                with _open_lock:
                    live = [ref for ref in _open_paths.get(self._key, []) if (st := ref()) is not None
                            and st is not self and not st._closed]
                    if live:
                        _open_paths[self._key] = live
                    else:
                        _open_paths.pop(self._key, None)

    def __enter__(self) -> KuzuGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing: nodes -----------------------------------------------------------------------------------------
    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        with self._tx():
            return self._upsert_nodes(nodes, replace=False)

    def _upsert_nodes(self, nodes: Iterable[Node], replace: bool) -> int:
        """Group by type; COPY nodes that are new, update (merge, or replace the props of) those that changed."""
        by_type: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
        for n in nodes:
            t = C.node_label(n.type)
            if not n.id:
                raise InvalidInput(f"{t} node without an id (name {n.name!r})")
            batch = by_type.setdefault(t, {})
            cur = batch.get(n.id)
            props = dict(n.props)
            if cur is None or replace:
                batch[n.id] = (n.name, props)
            else:
                batch[n.id] = C.merge_node(t, cur[0], cur[1], n.name, props)
        new_total = 0
        for t, batch in by_type.items():
            have = self._columns(C.kuzu_node_rows(t)) if len(batch) > 50 else \
                self._columns(C.kuzu_nodes_by_ids(t), {"ids": list(batch)})
            existing = {i: (nm, pj) for i, nm, pj in zip(have["id"], have["name"], have["props"], strict=True)}
            new: dict[str, list[str]] = {"id": [], "name": [], "search": [], "props": []}
            changed: list[dict[str, Any]] = []
            for node_id, (name, props) in batch.items():
                old = existing.get(node_id)
                if old is None:
                    new["id"].append(node_id)
                    new["name"].append(name)
                    new["search"].append(C.search_text(node_id, name, props))
                    new["props"].append(C.dumps(props))
                    continue
                if not replace:
                    name, props = C.merge_node(t, old[0] or "", C.loads(old[1]), name, props)
                pj = C.dumps(props)
                if (name, pj) != old:
                    changed.append({"id": node_id, "name": name, "search": C.search_text(node_id, name, props),
                                    "props": pj})
            if new["id"]:
                if len(new["id"]) >= COPY_MIN_NODES:
                    self._copy(t, new)
                else:
                    rows = [dict(zip(new, vals, strict=True)) for vals in zip(*new.values(), strict=True)]
                    self._run(C.kuzu_create_nodes(t), {"rows": rows})
            if changed:
                self._batched(C.kuzu_update_nodes(t), changed)
            new_total += len(new["id"])
        return new_total

    # --- writing: edges -----------------------------------------------------------------------------------------
    def upsert_edges(self, edges: Sequence[Edge]) -> int:
        with self._tx():
            return self._upsert_edges(edges)

    def _upsert_edges(self, edges: Iterable[Edge]) -> int:
        by_type: dict[str, dict[str, tuple[str, str, str, str | None, str]]] = {}
        for e in edges:
            t = C.rel_type(e.type)
            s, d = EDGE_TYPES[t]
            if (e.src_type, e.dst_type) != (s, d):
                raise InvalidInput(f"{t} edges go {s} → {d}, not {e.src_type} → {e.dst_type} ({e.id})")
            src, dst = e.src, e.dst
            if t == "INTERACTS_WITH" and dst < src:  # undirected: stored once, src < dst (as Edge.id sorts them)
                src, dst = dst, src
            props = dict(e.props)
            source = str(props.pop("source", "") or "")
            level = None
            if C.kuzu_has_level(t):
                lv = props.pop("level", None)
                level = None if lv is None else str(lv)
            by_type.setdefault(t, {})[e.id] = (src, dst, source, level, C.dumps(props))  # last one wins
        new_total = 0
        ids_cache: dict[str, set[str]] = {}
        for t, batch in by_type.items():
            s, d = EDGE_TYPES[t]
            has_level = C.kuzu_has_level(t)
            have = self._columns(C.kuzu_edge_rows(t))
            levels = have.get("level", [None] * len(have["eid"]))
            existing = {eid: (src, lv, pj) for eid, src, lv, pj in
                        zip(have["eid"], have["source"], levels, have["props"], strict=True)}
            new: dict[str, list[Any]] = {"from": [], "to": [], "eid": [], "source": []}
            if has_level:
                new["level"] = []
            new["props"] = []
            changed: list[dict[str, Any]] = []
            for eid, (src, dst, source, level, pj) in batch.items():
                cur = existing.get(eid)
                if cur is None:
                    new["from"].append(src)
                    new["to"].append(dst)
                    new["eid"].append(eid)
                    new["source"].append(source)
                    if has_level:
                        new["level"].append(level)
                    new["props"].append(pj)
                elif cur != (source, level, pj):
                    row: dict[str, Any] = {"src": src, "dst": dst, "eid": eid, "source": source, "props": pj}
                    if has_level:
                        row["level"] = level
                    changed.append(row)
            if new["eid"]:
                for end_type, col in ((s, "from"), (d, "to")):
                    if end_type not in ids_cache:
                        ids_cache[end_type] = set(self._columns(C.kuzu_node_ids(end_type))["id"])
                    missing = sorted(set(new[col]) - ids_cache[end_type])
                    if missing:
                        raise InvalidInput(f"{t} edges need their {end_type} nodes first: {len(missing)} missing, "
                                           f"e.g. {missing[:5]}")
                if len(new["eid"]) >= COPY_MIN_EDGES:
                    self._copy(t, new)
                else:
                    cols = ("src", "dst", *list(new)[2:])
                    rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*new.values(), strict=True)]
                    self._run(C.kuzu_create_edges(t), {"rows": rows})
            if changed:
                self._batched(C.kuzu_update_edges(t), changed)
            new_total += len(new["eid"])
        return new_total

    def delete_source(self, source: str) -> int:
        with self._tx():
            return sum(int(self._scalar(C.kuzu_delete_source(t), {"source": source}) or 0) for t in EDGE_TYPES)

    def get_source_fingerprint(self, source: str) -> str | None:
        with self._lock:
            v = self._scalar(C.KUZU_GET_META, {"key": f"fingerprint:{source}"})
            return None if v is None else str(v)

    def set_source_fingerprint(self, source: str, fingerprint: str) -> None:
        with self._lock:
            self._writable()
            self._run(C.KUZU_SET_META, {"key": f"fingerprint:{source}", "value": fingerprint})

    # --- writing: labels ----------------------------------------------------------------------------------------
    def upsert_label(self, label_id: str, props: dict[str, Any], drugs: Sequence[Node]) -> None:
        self.upsert_labels([(label_id, props, drugs)])

    def upsert_labels(self, items: Sequence[tuple[str, dict[str, Any], Sequence[Node]]]) -> None:
        """upsert_label for many labels in one transaction; from a handful of labels on it uses COPY."""
        plan = C.plan_labels(items)
        if not plan:
            return
        with self._tx():
            if len(plan) >= _BULK_LABELS:
                self._upsert_labels_bulk(plan)
            else:
                for label_id, (lprops, drugs, edges) in plan.items():
                    self._upsert_label_small(label_id, lprops, drugs, edges)

    def _upsert_label_small(self, label_id: str, props: dict[str, Any], drugs: list[Node],
                            edges: dict[str, tuple[str, str]]) -> None:
        if drugs:
            self._upsert_nodes(drugs, replace=False)
        name = str(props.get("title") or label_id)
        self._run(C.KUZU_MERGE_LABEL, {"id": label_id, "name": name, "search": C.search_text(label_id, name, props),
                                       "props": C.dumps(props)})
        have = {r["src"]: (r["eid"], r["source"]) for r in self._rows(C.KUZU_LABEL_EDGES, {"id": label_id})}
        stale = [src for src, (eid, source) in have.items() if eid not in edges or edges[eid][1] != source]
        if stale:
            self._run(C.KUZU_DELETE_LABEL_EDGES_TO, {"id": label_id, "drugs": stale})
        keep = {have[s][0] for s in have if s not in stale}
        rows = [{"src": src, "dst": label_id, "eid": eid, "source": source, "props": "{}"}
                for eid, (src, source) in edges.items() if eid not in keep]
        if rows:
            self._run(C.KUZU_CREATE_LABEL_EDGES, {"rows": rows})

    def _upsert_labels_bulk(self, plan: C.LabelPlan) -> None:
        self._upsert_nodes([d for _, drugs, _ in plan.values() for d in drugs], replace=False)
        self._upsert_nodes([Node("Label", lid, str(p.get("title") or lid), p) for lid, (p, _, _) in plan.items()],
                           replace=True)
        have = self._columns(C.KUZU_ALL_LABEL_EDGES)
        wanted = {eid for _, _, edges in plan.values() for eid in edges}
        stale = [{"src": src, "dst": dst} for src, dst, eid in zip(have["src"], have["dst"], have["eid"], strict=True)
                 if dst in plan and eid not in wanted]
        if stale:
            self._batched(C.KUZU_DELETE_LABEL_EDGE_PAIRS, stale)
        self._upsert_edges(Edge("HAS_LABEL", "Drug", src, "Label", lid, {"source": source})
                           for lid, (_, _, edges) in plan.items() for src, source in edges.values())

    def delete_label(self, label_id: str) -> bool:
        with self._tx():
            if not self._scalar(C.KUZU_COUNT_LABEL, {"id": label_id}):
                return False
            self._run(C.KUZU_DELETE_LABEL, {"id": label_id})
            return True

    def label_hashes(self) -> dict[str, str]:
        with self._lock:
            cols = self._columns(C.KUZU_LABEL_PROPS)
        out: dict[str, str] = {}
        for lid, pj in zip(cols["id"], cols["props"], strict=True):
            h = C.loads(pj).get("content_hash")
            if h:
                out[lid] = str(h)
        return out

    # --- reading ------------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"nodes": {t: int(self._scalar(C.kuzu_count_nodes(t)) or 0) for t in NODE_TYPES},
                    "edges": {t: int(self._scalar(C.kuzu_count_edges(t)) or 0) for t in EDGE_TYPES}}

    def names(self, node_type: str) -> list[tuple[str, str]]:
        t = C.node_label(node_type)
        with self._lock:
            cols = self._columns(C.kuzu_node_rows(t))
        out = [(i, n or i) for i, n in zip(cols["id"], cols["name"], strict=True)]
        if t == "Drug":
            for i, pj in zip(cols["id"], cols["props"], strict=True):
                if pj and '"aliases"' in pj:
                    out += [(i, str(a)) for a in C.as_list(C.loads(pj).get("aliases")) if a]
        return out

    def find_entities(self, q: str, limit: int = 20, types: Iterable[str] | None = None) -> list[GNode]:
        qs, qx = C.search_terms(q)
        if not qs or limit <= 0:
            return []
        chosen = NODE_TYPES if types is None else tuple(C.node_label(t) for t in ([types] if isinstance(types, str)
                                                                                   else types))
        found: list[tuple[int, int, int, str, GNode]] = []
        with self._lock:
            for rank, t in enumerate(NODE_TYPES):
                if t not in chosen:
                    continue
                for r in self._rows(C.kuzu_find(t), {"q": qs, "qx": qx, "limit": int(limit)}):
                    found.append((0 if r["exact"] else 1, int(r["len"] or 0), rank, r["id"],
                                  C.make_node(t, r["id"], r["name"], C.loads(r["props"]))))
        found.sort(key=lambda x: x[:4])
        return [x[4] for x in found[:limit]]

    def get_node(self, node_type: str, node_id: str) -> GNode | None:
        t = C.node_label(node_type)
        with self._lock:
            rows = self._rows(C.kuzu_get_node(t), {"id": node_id})
        return C.make_node(t, rows[0]["id"], rows[0]["name"], C.loads(rows[0]["props"])) if rows else None

    @staticmethod
    def _edge(edge_type: str, r: dict[str, Any]) -> GEdge:
        props = C.loads(r["props"])
        if r.get("source") is not None:
            props["source"] = r["source"]
        if r.get("level") is not None:
            props["level"] = r["level"]
        return C.make_edge(edge_type, r["src"], r["src_name"], r["dst"], r["dst_name"], r["eid"], props)

    def interactions_between(self, drug_ids: Sequence[str]) -> list[GEdge]:
        ids = sorted({i for i in drug_ids if i})
        if len(ids) < 2:
            return []
        with self._lock:
            rows = self._rows(C.KUZU_INTERACTIONS_BETWEEN, {"ids": ids})
        return [self._edge("INTERACTS_WITH", r) for r in rows]

    def interactions_of(self, drug_id: str, limit: int = 50) -> list[GEdge]:
        if limit <= 0:
            return []
        with self._lock:
            out = self._rows(C.KUZU_INTERACTIONS_OUT, {"id": drug_id, "limit": int(limit)})
            inc = self._rows(C.KUZU_INTERACTIONS_IN, {"id": drug_id, "limit": int(limit)})
        rows = sorted([(r["sev"], r["dst_name"] or "", r["eid"], r) for r in out]
                      + [(r["sev"], r["src_name"] or "", r["eid"], r) for r in inc], key=lambda x: x[:3])
        return [self._edge("INTERACTS_WITH", x[3]) for x in rows[:limit]]

    def _expand(self, frontier: dict[str, list[str]], edge_types: Sequence[str], cap: int
                ) -> tuple[list[GEdge], bool]:
        """Up to `cap` distinct edges touching the frontier; True when there may be more."""
        got: dict[str, GEdge] = {}
        for t, outgoing in C.branches_for(frontier, edge_types):
            s, d = EDGE_TYPES[t]
            ids = frontier[s if outgoing else d]
            lim = cap + len(got)  # rows already seen may come again; allow for them
            if len(ids) == 1:
                rows = self._rows(C.kuzu_expand_one(t, outgoing), {"id": ids[0], "limit": lim})
            else:
                rows = self._rows(C.kuzu_expand(t, outgoing), {"ids": ids, "limit": lim})
            for r in rows:
                got.setdefault(r["eid"], self._edge(t, r))
            if len(got) >= cap:
                return list(got.values())[:cap], True
        return list(got.values()), False

    def edges_of(self, node_type: str, node_id: str, edge_types: Iterable[str] | None = None,
                 limit: int = 100) -> list[GEdge]:
        t = C.node_label(node_type)
        types = C.check_edge_types(edge_types)
        if limit <= 0:
            return []
        with self._lock:
            edges, _ = self._expand({t: [node_id]}, types, int(limit))
        return edges

    def _fetch_nodes(self, by_type: dict[str, list[str]]) -> list[GNode]:
        out: list[GNode] = []
        for t, ids in by_type.items():
            for r in self._rows(C.kuzu_nodes_by_ids(t), {"ids": ids}):
                out.append(C.make_node(t, r["id"], r["name"], C.loads(r["props"])))
        return out

    def neighbourhood(self, node_type: str, node_id: str, depth: int = 1, edge_types: Iterable[str] | None = None,
                      limit: int = 200) -> tuple[list[GNode], list[GEdge], bool]:
        t = C.node_label(node_type)
        types = C.check_edge_types(edge_types)
        if not 1 <= int(depth) <= 3:
            raise InvalidInput(f"neighbourhood depth must be 1..3, not {depth}")
        if limit < 0:
            raise InvalidInput(f"neighbourhood limit must be >= 0, not {limit}")
        with self._lock:
            start = self.get_node(t, node_id)
            if start is None:
                return [], [], False
            return C.bounded_neighbourhood(start, int(depth), types, int(limit), self._expand, self._fetch_nodes)

    def labels_of_drug(self, drug_id: str) -> list[str]:
        with self._lock:
            return [r["id"] for r in self._rows(C.KUZU_LABELS_OF_DRUG, {"id": drug_id})]

    def drug_label_index(self) -> dict[str, list[str]]:
        with self._lock:
            cols = self._columns(C.KUZU_DRUG_LABEL_INDEX)
        out: dict[str, list[str]] = {}
        for d, lab in zip(cols["drug"], cols["label"], strict=True):
            out.setdefault(d, []).append(lab)
        return out


def _open_error(path: Path, e: BaseException) -> str:
    msg = str(e).strip()
    low = msg.lower()
    if "lock" in low:
        return (f"kuzu graph database {path} is in use by another process (kuzu allows one read-write process per "
                f"database; stop the other process, e.g. a running API or ingest, or wait for it): {msg}")
    if "not a valid" in low or "corrupt" in low:
        return f"{path} is not a kuzu graph database (move it away or point the store elsewhere): {msg}"
    return f"cannot open kuzu graph database {path}: {msg}"
