"""KuzuGraphStore: the GraphStore on kuzu, an embedded Cypher engine (one database file, no server).

Bulk writes are COPY FROM an Arrow table (only rows not yet present; existing ones are compared and updated in
parameterised batches), so a full DDInter + CMeKG load takes seconds. All query text lives in graph/cypher/kuzu.py;
opening, locking and statement plumbing in graph/kuzu_conn.py (one read-write handle per database).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from graph import cypher as C
from graph import records as R
from graph.kuzu_conn import KuzuConnection
from graph.store import EDGE_TYPES, NODE_TYPES, GEdge, GNode
from kb_loaders.errors import InvalidInput, StoreUnavailable
from kb_loaders.model import Edge, Node

log = logging.getLogger(__name__)

# below these sizes new rows go in with UNWIND … CREATE: COPY has a fixed cost of about 100 ms (more at commit)
COPY_MIN_NODES = 2_000
COPY_MIN_EDGES = 200
# upsert_labels switches from per-label statements to the COPY path at this many labels
_BULK_LABELS = 8



class KuzuGraphStore:
    """GraphStore on a kuzu database file. `read_only=True` opens an existing database for reading (several
    read-only processes may share it while no read-write one holds it)."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self._c = KuzuConnection(path, read_only=read_only)
        self.path = self._c.path
        self.read_only = read_only
        try:
            if read_only:
                missing = set(NODE_TYPES) - set(self._c.tables())
                if missing:
                    raise StoreUnavailable(f"kuzu graph database {self.path} has no graph schema "
                                           f"(missing tables {sorted(missing)}); run ingest first")
            else:
                self.ensure_schema()
        except BaseException:
            self.close()
            raise

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with self._c.lock:
            if self.read_only:
                return
            for t in NODE_TYPES:
                self._c.run(C.kuzu_create_node_table(t))
            self._c.run(C.KUZU_CREATE_META)
            for e in EDGE_TYPES:
                self._c.run(C.kuzu_create_rel_table(e))

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> KuzuGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing: nodes -----------------------------------------------------------------------------------------
    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        with self._c.tx():
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
                batch[n.id] = R.merge_node(t, cur[0], cur[1], n.name, props)
        new_total = 0
        for t, batch in by_type.items():
            have = self._c.columns(C.kuzu_node_rows(t)) if len(batch) > 50 else \
                self._c.columns(C.kuzu_nodes_by_ids(t), {"ids": list(batch)})
            existing = {i: (nm, pj) for i, nm, pj in zip(have["id"], have["name"], have["props"], strict=True)}
            new: dict[str, list[str]] = {"id": [], "name": [], "search": [], "props": []}
            changed: list[dict[str, Any]] = []
            for node_id, (name, props) in batch.items():
                old = existing.get(node_id)
                if old is None:
                    new["id"].append(node_id)
                    new["name"].append(name)
                    new["search"].append(R.search_text(node_id, name, props))
                    new["props"].append(R.dumps(props))
                    continue
                if not replace:
                    name, props = R.merge_node(t, old[0] or "", R.loads(old[1]), name, props)
                pj = R.dumps(props)
                if (name, pj) != old:
                    changed.append({"id": node_id, "name": name, "search": R.search_text(node_id, name, props),
                                    "props": pj})
            if new["id"]:
                if len(new["id"]) >= COPY_MIN_NODES:
                    self._c.copy(t, new)
                else:
                    rows = [dict(zip(new, vals, strict=True)) for vals in zip(*new.values(), strict=True)]
                    self._c.run(C.kuzu_create_nodes(t), {"rows": rows})
            if changed:
                self._c.batched(C.kuzu_update_nodes(t), changed)
            new_total += len(new["id"])
        return new_total

    # --- writing: edges -----------------------------------------------------------------------------------------
    def upsert_edges(self, edges: Sequence[Edge]) -> int:
        with self._c.tx():
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
            by_type.setdefault(t, {})[e.id] = (src, dst, source, level, R.dumps(props))  # last one wins
        new_total = 0
        ids_cache: dict[str, set[str]] = {}
        for t, batch in by_type.items():
            s, d = EDGE_TYPES[t]
            has_level = C.kuzu_has_level(t)
            have = self._c.columns(C.kuzu_edge_rows(t))
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
                        ids_cache[end_type] = set(self._c.columns(C.kuzu_node_ids(end_type))["id"])
                    missing = sorted(set(new[col]) - ids_cache[end_type])
                    if missing:
                        raise InvalidInput(f"{t} edges need their {end_type} nodes first: {len(missing)} missing, "
                                           f"e.g. {missing[:5]}")
                if len(new["eid"]) >= COPY_MIN_EDGES:
                    self._c.copy(t, new)
                else:
                    cols = ("src", "dst", *list(new)[2:])
                    rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*new.values(), strict=True)]
                    self._c.run(C.kuzu_create_edges(t), {"rows": rows})
            if changed:
                self._c.batched(C.kuzu_update_edges(t), changed)
            new_total += len(new["eid"])
        return new_total

    def delete_source(self, source: str) -> int:
        with self._c.tx():
            return sum(int(self._c.scalar(C.kuzu_delete_source(t), {"source": source}) or 0) for t in EDGE_TYPES)

    def get_source_fingerprint(self, source: str) -> str | None:
        with self._c.lock:
            v = self._c.scalar(C.KUZU_GET_META, {"key": f"fingerprint:{source}"})
            return None if v is None else str(v)

    def set_source_fingerprint(self, source: str, fingerprint: str) -> None:
        with self._c.lock:
            self._c.writable()
            self._c.run(C.KUZU_SET_META, {"key": f"fingerprint:{source}", "value": fingerprint})

    # --- writing: labels ----------------------------------------------------------------------------------------
    def upsert_label(self, label_id: str, props: dict[str, Any], drugs: Sequence[Node]) -> None:
        self.upsert_labels([(label_id, props, drugs)])

    def upsert_labels(self, items: Sequence[tuple[str, dict[str, Any], Sequence[Node]]]) -> None:
        """upsert_label for many labels in one transaction; from a handful of labels on it uses COPY."""
        plan = R.plan_labels(items)
        if not plan:
            return
        with self._c.tx():
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
        self._c.run(C.KUZU_MERGE_LABEL, {"id": label_id, "name": name, "search": R.search_text(label_id, name, props),
                                       "props": R.dumps(props)})
        have = {r["src"]: (r["eid"], r["source"]) for r in self._c.rows(C.KUZU_LABEL_EDGES, {"id": label_id})}
        stale = [src for src, (eid, source) in have.items() if eid not in edges or edges[eid][1] != source]
        if stale:
            self._c.run(C.KUZU_DELETE_LABEL_EDGES_TO, {"id": label_id, "drugs": stale})
        keep = {have[s][0] for s in have if s not in stale}
        rows = [{"src": src, "dst": label_id, "eid": eid, "source": source, "props": "{}"}
                for eid, (src, source) in edges.items() if eid not in keep]
        if rows:
            self._c.run(C.KUZU_CREATE_LABEL_EDGES, {"rows": rows})

    def _upsert_labels_bulk(self, plan: R.LabelPlan) -> None:
        self._upsert_nodes([d for _, drugs, _ in plan.values() for d in drugs], replace=False)
        self._upsert_nodes([Node("Label", lid, str(p.get("title") or lid), p) for lid, (p, _, _) in plan.items()],
                           replace=True)
        have = self._c.columns(C.KUZU_ALL_LABEL_EDGES)
        wanted = {eid for _, _, edges in plan.values() for eid in edges}
        stale = [{"src": src, "dst": dst} for src, dst, eid in zip(have["src"], have["dst"], have["eid"], strict=True)
                 if dst in plan and eid not in wanted]
        if stale:
            self._c.batched(C.KUZU_DELETE_LABEL_EDGE_PAIRS, stale)
        self._upsert_edges(Edge("HAS_LABEL", "Drug", src, "Label", lid, {"source": source})
                           for lid, (_, _, edges) in plan.items() for src, source in edges.values())

    def delete_label(self, label_id: str) -> bool:
        with self._c.tx():
            if not self._c.scalar(C.KUZU_COUNT_LABEL, {"id": label_id}):
                return False
            self._c.run(C.KUZU_DELETE_LABEL, {"id": label_id})
            return True

    def label_hashes(self) -> dict[str, str]:
        with self._c.lock:
            cols = self._c.columns(C.KUZU_LABEL_PROPS)
        out: dict[str, str] = {}
        for lid, pj in zip(cols["id"], cols["props"], strict=True):
            h = R.loads(pj).get("content_hash")
            if h:
                out[lid] = str(h)
        return out

    # --- reading ------------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        with self._c.lock:
            return {"nodes": {t: int(self._c.scalar(C.kuzu_count_nodes(t)) or 0) for t in NODE_TYPES},
                    "edges": {t: int(self._c.scalar(C.kuzu_count_edges(t)) or 0) for t in EDGE_TYPES}}

    def names(self, node_type: str) -> list[tuple[str, str]]:
        t = C.node_label(node_type)
        with self._c.lock:
            cols = self._c.columns(C.kuzu_node_rows(t))
        out = [(i, n or i) for i, n in zip(cols["id"], cols["name"], strict=True)]
        if t == "Drug":
            for i, pj in zip(cols["id"], cols["props"], strict=True):
                if pj and '"aliases"' in pj:
                    out += [(i, str(a)) for a in R.as_list(R.loads(pj).get("aliases")) if a]
        return out

    def find_entities(self, q: str, limit: int = 20, types: Iterable[str] | None = None) -> list[GNode]:
        qs, qx = R.search_terms(q)
        if not qs or limit <= 0:
            return []
        chosen = NODE_TYPES if types is None else tuple(C.node_label(t) for t in ([types] if isinstance(types, str)
                                                                                   else types))
        found: list[tuple[int, int, int, str, GNode]] = []
        with self._c.lock:
            for rank, t in enumerate(NODE_TYPES):
                if t not in chosen:
                    continue
                for r in self._c.rows(C.kuzu_find(t), {"q": qs, "qx": qx, "limit": int(limit)}):
                    found.append((0 if r["exact"] else 1, int(r["len"] or 0), rank, r["id"],
                                  R.make_node(t, r["id"], r["name"], R.loads(r["props"]))))
        found.sort(key=lambda x: x[:4])
        return [x[4] for x in found[:limit]]

    def get_node(self, node_type: str, node_id: str) -> GNode | None:
        t = C.node_label(node_type)
        with self._c.lock:
            rows = self._c.rows(C.kuzu_get_node(t), {"id": node_id})
        return R.make_node(t, rows[0]["id"], rows[0]["name"], R.loads(rows[0]["props"])) if rows else None

    def get_edge(self, edge_id: str) -> GEdge | None:
        parsed = R.parse_edge_id(edge_id)
        if parsed is None:
            return None
        t, src, dst = parsed
        with self._c.lock:
            rows = self._c.rows(C.kuzu_get_edge(t), {"src": src, "dst": dst, "eid": edge_id})
        return R.edge_from_row(t, rows[0]) if rows else None

    def interactions_between(self, drug_ids: Sequence[str]) -> list[GEdge]:
        ids = sorted({i for i in drug_ids if i})
        if len(ids) < 2:
            return []
        with self._c.lock:
            rows = self._c.rows(C.KUZU_INTERACTIONS_BETWEEN, {"ids": ids})
        return [R.edge_from_row("INTERACTS_WITH", r) for r in rows]

    def interactions_of(self, drug_id: str, limit: int = 50) -> list[GEdge]:
        if limit <= 0:
            return []
        with self._c.lock:
            out = self._c.rows(C.KUZU_INTERACTIONS_OUT, {"id": drug_id, "limit": int(limit)})
            inc = self._c.rows(C.KUZU_INTERACTIONS_IN, {"id": drug_id, "limit": int(limit)})
        rows = sorted([(r["sev"], r["dst_name"] or "", r["eid"], r) for r in out]
                      + [(r["sev"], r["src_name"] or "", r["eid"], r) for r in inc], key=lambda x: x[:3])
        return [R.edge_from_row("INTERACTS_WITH", x[3]) for x in rows[:limit]]

    def _expand(self, frontier: dict[str, list[str]], edge_types: Sequence[str], cap: int
                ) -> tuple[list[GEdge], bool]:
        """Up to `cap` distinct edges touching the frontier; True when there may be more."""
        got: dict[str, GEdge] = {}
        for t, outgoing in R.branches_for(frontier, edge_types):
            s, d = EDGE_TYPES[t]
            ids = frontier[s if outgoing else d]
            lim = cap + len(got)  # rows already seen may come again; allow for them
            if len(ids) == 1:
                rows = self._c.rows(C.kuzu_expand_one(t, outgoing), {"id": ids[0], "limit": lim})
            else:
                rows = self._c.rows(C.kuzu_expand(t, outgoing), {"ids": ids, "limit": lim})
            for r in rows:
                got.setdefault(r["eid"], R.edge_from_row(t, r))
            if len(got) >= cap:
                return list(got.values())[:cap], True
        return list(got.values()), False

    def edges_of(self, node_type: str, node_id: str, edge_types: Iterable[str] | None = None,
                 limit: int = 100) -> list[GEdge]:
        t = C.node_label(node_type)
        types = R.check_edge_types(edge_types)
        if limit <= 0:
            return []
        with self._c.lock:
            edges, _ = self._expand({t: [node_id]}, types, int(limit))
        return edges

    def _fetch_nodes(self, by_type: dict[str, list[str]]) -> list[GNode]:
        out: list[GNode] = []
        for t, ids in by_type.items():
            for r in self._c.rows(C.kuzu_nodes_by_ids(t), {"ids": ids}):
                out.append(R.make_node(t, r["id"], r["name"], R.loads(r["props"])))
        return out

    def neighbourhood(self, node_type: str, node_id: str, depth: int = 1, edge_types: Iterable[str] | None = None,
                      limit: int = 200) -> tuple[list[GNode], list[GEdge], bool]:
        t = C.node_label(node_type)
        types = R.check_edge_types(edge_types)
        if not 1 <= int(depth) <= 3:
            raise InvalidInput(f"neighbourhood depth must be 1..3, not {depth}")
        if limit < 0:
            raise InvalidInput(f"neighbourhood limit must be >= 0, not {limit}")
        with self._c.lock:
            start = self.get_node(t, node_id)
            if start is None:
                return [], [], False
            return R.bounded_neighbourhood(start, int(depth), types, int(limit), self._expand, self._fetch_nodes)

    def labels_of_drug(self, drug_id: str) -> list[str]:
        with self._c.lock:
            return [r["id"] for r in self._c.rows(C.KUZU_LABELS_OF_DRUG, {"id": drug_id})]

    def drug_label_index(self) -> dict[str, list[str]]:
        with self._c.lock:
            cols = self._c.columns(C.KUZU_DRUG_LABEL_INDEX)
        out: dict[str, list[str]] = {}
        for d, lab in zip(cols["drug"], cols["label"], strict=True):
            out.setdefault(d, []).append(lab)
        return out
