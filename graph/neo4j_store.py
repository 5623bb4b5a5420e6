"""Neo4jGraphStore: the GraphStore on a Neo4j 5 server (docker-compose), through the official driver.

Every statement is a constant or whitelist-built text from graph/cypher.py, sent with `driver.execute_query`
and parameters (writes batched by `batch_size` rows per UNWIND). An injected driver (or a mock spec'd on
neo4j.Driver) is used as is; a URI gets a driver of its own, checked at once and closed by close().

Differences from the kuzu store: a batch is one transaction per statement (not per call); node props other than
a Drug's aliases/sources are replaced key by key (`+=`), so a list prop of a non-Drug node is not unioned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import neo4j
from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    ConnectionAcquisitionTimeoutError,
    DatabaseUnavailable,
    ServiceUnavailable,
    SessionExpired,
)

from graph import cypher as C
from graph import records as R
from graph.store import EDGE_TYPES, NODE_TYPES, GEdge, GNode
from kb_loaders.errors import InvalidInput, StoreUnavailable
from kb_loaders.model import Edge, Node

log = logging.getLogger(__name__)

class Neo4jGraphStore:
    def __init__(self, driver_or_uri: neo4j.Driver | str, user: str | None = None, password: str | None = None,
                 database: str | None = "neo4j", batch_size: int = 5000) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.database = database or None
        self.batch_size = int(batch_size)
        if isinstance(driver_or_uri, str):
            self.uri = driver_or_uri
            self._owns_driver = True
            try:
                self._driver = neo4j.GraphDatabase.driver(driver_or_uri, auth=(user or "", password or ""))
            except (ConfigurationError, ValueError) as e:
                raise StoreUnavailable(f"cannot connect to Neo4j at {driver_or_uri}: {e}") from e
            try:
                self._driver.verify_connectivity()
            except BaseException as e:
                self._driver.close()
                if isinstance(e, Exception):
                    mapped = self._map_error(e)
                    if mapped is not None:
                        raise mapped from e
                raise
        else:
            self.uri = "the configured Neo4j server"
            self._owns_driver = False
            self._driver = driver_or_uri

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _map_error(self, e: Exception) -> StoreUnavailable | None:
        if isinstance(e, AuthError):
            return StoreUnavailable(f"Neo4j at {self.uri} refused the credentials (check DRUGRAG_NEO4J_USER and "
                                    f"DRUGRAG_NEO4J_PASSWORD): {getattr(e, 'message', None) or e}")
        if isinstance(e, (ServiceUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError)):
            return StoreUnavailable(f"Neo4j at {self.uri} is unreachable (is the server running?): {e}")
        if isinstance(e, DatabaseUnavailable):
            return StoreUnavailable(f"Neo4j database {self.database!r} at {self.uri} is unavailable: {e}")
        return None

    def _run(self, query: str, params: Mapping[str, Any] | None = None, read: bool = False) -> neo4j.EagerResult:
        C.check_params(query, params)
        try:
            return self._driver.execute_query(
                query, parameters_=dict(params or {}), database_=self.database,
                routing_=neo4j.RoutingControl.READ if read else neo4j.RoutingControl.WRITE)
        except Exception as e:
            mapped = self._map_error(e)
            if mapped is not None:
                raise mapped from e
            raise

    def _records(self, query: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self._run(query, params, read=True).records)

    def _batches(self, rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
        for i in range(0, len(rows), self.batch_size):
            yield rows[i: i + self.batch_size]

    @staticmethod
    def _n(res: neo4j.EagerResult) -> int | None:
        """The `n` column of a one-row aggregate result, None when there is none."""
        recs = list(res.records)
        if not recs:
            return None
        v = recs[0]["n"]
        return int(v) if isinstance(v, (int, float)) else None

    @staticmethod
    def _counter(res: neo4j.EagerResult, name: str) -> int:
        v = getattr(res.summary.counters, name, 0)
        return int(v) if isinstance(v, (int, float)) else 0

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        for q in C.neo4j_schema():
            self._run(q)

    def close(self) -> None:
        if self._owns_driver:
            self._driver.close()

    def __enter__(self) -> Neo4jGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------------------------------
    @staticmethod
    def _node_row(t: str, node_id: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
        if t == "Drug":
            rest = {k: v for k, v in props.items() if k not in C.MERGED_LIST_KEYS and k not in C.RESERVED_NODE_KEYS}
            return {"id": node_id, "name": name, "props": R.flatten_props(rest),
                    "aliases": [str(a) for a in R.as_list(props.get("aliases")) if a],
                    "sources": [str(s) for s in R.as_list(props.get("sources")) if s]}
        rest = {k: v for k, v in props.items() if k not in C.RESERVED_NODE_KEYS}
        if t == "Label":
            return {"id": node_id, "props": {**R.flatten_props(rest), "id": node_id, "name": name,
                                             "search": R.search_text(node_id, name, props)}}
        return {"id": node_id, "name": name, "search": R.search_text(node_id, name, props),
                "props": R.flatten_props(rest)}

    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        by_type: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
        for n in nodes:
            t = C.node_label(n.type)
            if not n.id:
                raise InvalidInput(f"{t} node without an id (name {n.name!r})")
            batch = by_type.setdefault(t, {})
            cur = batch.get(n.id)
            batch[n.id] = (n.name, dict(n.props)) if cur is None or t == "Label" else \
                R.merge_node(t, cur[0], cur[1], n.name, dict(n.props))
        created = 0
        for t in NODE_TYPES:
            if t not in by_type:
                continue
            rows = [self._node_row(t, i, name, props) for i, (name, props) in by_type[t].items()]
            for chunk in self._batches(rows):
                created += self._counter(self._run(C.neo4j_upsert_nodes(t), {"rows": chunk}), "nodes_created")
        return created

    def upsert_edges(self, edges: Sequence[Edge]) -> int:
        by_type: dict[str, dict[str, dict[str, Any]]] = {}
        for e in edges:
            t = C.rel_type(e.type)
            s, d = EDGE_TYPES[t]
            if (e.src_type, e.dst_type) != (s, d):
                raise InvalidInput(f"{t} edges go {s} → {d}, not {e.src_type} → {e.dst_type} ({e.id})")
            src, dst = e.src, e.dst
            if t == "INTERACTS_WITH" and dst < src:
                src, dst = dst, src
            props = dict(e.props)
            source = str(props.pop("source", "") or "")
            props.pop("eid", None)
            by_type.setdefault(t, {})[e.id] = {"src": src, "dst": dst, "eid": e.id, "source": source,
                                               "props": R.flatten_props(props)}
        created = 0
        for t in EDGE_TYPES:
            if t not in by_type:
                continue
            for chunk in self._batches(list(by_type[t].values())):
                res = self._run(C.neo4j_upsert_edges(t), {"rows": chunk})
                n = self._n(res)
                if n is not None and n < len(chunk):
                    s, d = EDGE_TYPES[t]
                    raise InvalidInput(f"{t} edges need their {s}/{d} nodes first: {len(chunk) - n} of {len(chunk)} "
                                       "edges in a batch had a missing endpoint")
                created += self._counter(res, "relationships_created")
        return created

    def delete_source(self, source: str) -> int:
        total = 0
        for t in EDGE_TYPES:
            while True:
                n = self._n(self._run(C.neo4j_delete_source(t), {"source": source, "batch": self.batch_size})) or 0
                total += n
                if n < self.batch_size:
                    break
        return total

    def get_source_fingerprint(self, source: str) -> str | None:
        recs = self._records(C.NEO4J_GET_META, {"key": f"fingerprint:{source}"})
        return None if not recs or recs[0]["value"] is None else str(recs[0]["value"])

    def set_source_fingerprint(self, source: str, fingerprint: str) -> None:
        self._run(C.NEO4J_SET_META, {"key": f"fingerprint:{source}", "value": fingerprint})

    def upsert_label(self, label_id: str, props: dict[str, Any], drugs: Sequence[Node]) -> None:
        self.upsert_labels([(label_id, props, drugs)])

    def upsert_labels(self, items: Sequence[tuple[str, dict[str, Any], Sequence[Node]]]) -> None:
        plan = R.plan_labels(items)
        if not plan:
            return
        drugs = [d for _, ds, _ in plan.values() for d in ds]
        if drugs:
            self.upsert_nodes(drugs)
        label_rows = [self._node_row("Label", lid, str(p.get("title") or lid), p) for lid, (p, _, _) in plan.items()]
        for chunk in self._batches(label_rows):
            self._run(C.NEO4J_UPSERT_LABEL_NODES, {"rows": chunk})
        prune = [{"id": lid, "drugs": sorted({src for src, _ in edges.values()})}
                 for lid, (_, _, edges) in plan.items()]
        for chunk in self._batches(prune):
            self._run(C.NEO4J_PRUNE_LABEL_EDGES, {"rows": chunk})
        self.upsert_edges([Edge("HAS_LABEL", "Drug", src, "Label", lid, {"source": source})
                           for lid, (_, _, edges) in plan.items() for src, source in edges.values()])

    def delete_label(self, label_id: str) -> bool:
        return bool(self._n(self._run(C.NEO4J_DELETE_LABEL, {"id": label_id})))

    def label_hashes(self) -> dict[str, str]:
        return {r["id"]: str(r["content_hash"]) for r in self._records(C.NEO4J_LABEL_HASHES) if r["content_hash"]}

    # --- reading ------------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        return {"nodes": {t: self._n(self._run(C.neo4j_count_nodes(t), read=True)) or 0 for t in NODE_TYPES},
                "edges": {t: self._n(self._run(C.neo4j_count_edges(t), read=True)) or 0 for t in EDGE_TYPES}}

    def names(self, node_type: str) -> list[tuple[str, str]]:
        t = C.node_label(node_type)
        recs = self._records(C.neo4j_names(t))
        out = [(r["id"], r["name"] or r["id"]) for r in recs]
        if t == "Drug":
            out += [(r["id"], str(a)) for r in recs for a in (r["aliases"] or []) if a]
        return out

    @staticmethod
    def _node(t: str, r: Any) -> GNode:
        props = {k: v for k, v in dict(r["props"] or {}).items() if k not in C.RESERVED_NODE_KEYS}
        return R.make_node(t, r["id"], r["name"], props)

    @staticmethod
    def _edge(r: Any) -> GEdge:
        props = dict(r["props"] or {})
        props.pop("eid", None)
        return R.make_edge(r["type"], r["src"], r["src_name"], r["dst"], r["dst_name"], r["eid"], props)

    def find_entities(self, q: str, limit: int = 20, types: Iterable[str] | None = None) -> list[GNode]:
        qs, qx = R.search_terms(q)
        if not qs or limit <= 0:
            return []
        wanted = None if types is None else {C.node_label(t) for t in ([types] if isinstance(types, str) else types)}
        chosen = tuple(t for t in NODE_TYPES if wanted is None or t in wanted)
        if not chosen:
            return []
        recs = self._records(C.neo4j_find(chosen), {"q": qs, "qx": qx, "limit": int(limit)})
        found = sorted(recs, key=lambda r: (0 if r["exact"] else 1, len(r["name"] or ""),
                                            NODE_TYPES.index(r["type"]), r["id"]))
        return [self._node(r["type"], r) for r in found[:limit]]

    def get_node(self, node_type: str, node_id: str) -> GNode | None:
        t = C.node_label(node_type)
        recs = self._records(C.neo4j_get_node(t), {"id": node_id})
        return self._node(t, recs[0]) if recs else None

    def get_edge(self, edge_id: str) -> GEdge | None:
        parsed = R.parse_edge_id(edge_id)
        if parsed is None:
            return None
        t, src, dst = parsed
        rows = self._records(C.neo4j_get_edge(t), {"src": src, "dst": dst, "eid": edge_id})
        return self._edge(rows[0]) if rows else None

    def interactions_between(self, drug_ids: Sequence[str]) -> list[GEdge]:
        ids = sorted({i for i in drug_ids if i})
        if len(ids) < 2:
            return []
        return [self._edge(r) for r in self._records(C.NEO4J_INTERACTIONS_BETWEEN, {"ids": ids})]

    def interactions_of(self, drug_id: str, limit: int = 50) -> list[GEdge]:
        if limit <= 0:
            return []
        return [self._edge(r) for r in self._records(C.NEO4J_INTERACTIONS_OF, {"id": drug_id, "limit": int(limit)})]

    def _expand(self, frontier: dict[str, list[str]], edge_types: Sequence[str], cap: int
                ) -> tuple[list[GEdge], bool]:
        branches = tuple(R.branches_for(frontier, edge_types))
        if not branches:
            return [], False
        params: dict[str, Any] = {"cap": int(cap)}
        for t, outgoing in branches:
            s, d = EDGE_TYPES[t]
            anchor = s if outgoing else d
            params[f"ids_{anchor}"] = sorted(frontier[anchor])
        got: dict[str, GEdge] = {}
        per_branch: dict[tuple[str, str], int] = {}
        for r in self._records(C.neo4j_expand(branches), params):
            key = (r["type"], r["dir"])
            per_branch[key] = per_branch.get(key, 0) + 1
            got.setdefault(r["eid"], self._edge(r))
        maybe_more = len(got) > cap or any(v >= cap for v in per_branch.values())
        return list(got.values())[:cap], maybe_more

    def edges_of(self, node_type: str, node_id: str, edge_types: Iterable[str] | None = None,
                 limit: int = 100) -> list[GEdge]:
        t = C.node_label(node_type)
        types = R.check_edge_types(edge_types)
        if limit <= 0:
            return []
        edges, _ = self._expand({t: [node_id]}, types, int(limit))
        return edges

    def _fetch_nodes(self, by_type: dict[str, list[str]]) -> list[GNode]:
        chosen = tuple(t for t in NODE_TYPES if by_type.get(t))
        if not chosen:
            return []
        recs = self._records(C.neo4j_nodes_by_ids(chosen), {f"ids_{t}": by_type[t] for t in chosen})
        return [self._node(r["type"], r) for r in recs]

    def neighbourhood(self, node_type: str, node_id: str, depth: int = 1, edge_types: Iterable[str] | None = None,
                      limit: int = 200) -> tuple[list[GNode], list[GEdge], bool]:
        t = C.node_label(node_type)
        types = R.check_edge_types(edge_types)
        if not 1 <= int(depth) <= 3:
            raise InvalidInput(f"neighbourhood depth must be 1..3, not {depth}")
        if limit < 0:
            raise InvalidInput(f"neighbourhood limit must be >= 0, not {limit}")
        start = self.get_node(t, node_id)
        if start is None:
            return [], [], False
        return R.bounded_neighbourhood(start, int(depth), types, int(limit), self._expand, self._fetch_nodes)

    def labels_of_drug(self, drug_id: str) -> list[str]:
        return [r["id"] for r in self._records(C.NEO4J_LABELS_OF_DRUG, {"id": drug_id})]

    def drug_label_index(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self._records(C.NEO4J_DRUG_LABEL_INDEX):
            out.setdefault(r["drug"], []).append(r["label"])
        return out
