"""Neo4jGraphStore against a driver mock (create_autospec(neo4j.Driver)): the exact Cypher and parameters sent,
that no user-supplied value ever reaches query text, and error mapping. With a Neo4j server (docker-compose,
`-m neo4j`), the shared GraphStore contract runs against it too."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock, create_autospec

import neo4j
import pytest
from graph_contract import GraphStoreContract, load, sample
from neo4j.exceptions import AuthError, CypherSyntaxError, ServiceUnavailable

from graph import cypher as C
from graph.neo4j_store import Neo4jGraphStore
from graph.store import EDGE_TYPES, NODE_TYPES, GraphStore
from kb_loaders.model import Edge, Node
from rag.core.errors import InvalidInput, StoreUnavailable

Handler = Callable[[str, dict[str, Any]], tuple[list[dict[str, Any]], dict[str, int]]]


class FakeNeo4j:
    """A spec'd neo4j.Driver mock whose execute_query answers via handlers (first matching query prefix wins) and
    records every (query, parameters, routing, database)."""

    def __init__(self) -> None:
        self.driver = create_autospec(neo4j.Driver, instance=True)
        self.driver.execute_query.side_effect = self._exec
        self.handlers: list[tuple[str, Handler]] = []

    def on(self, prefix: str, fn: Handler) -> None:
        self.handlers.append((prefix, fn))

    def _exec(self, query: str, parameters_: dict[str, Any] | None = None, routing_: Any = None,
              database_: str | None = None, **kw: Any) -> neo4j.EagerResult:
        recs: list[dict[str, Any]] = []
        counters: dict[str, int] = {}
        for prefix, fn in self.handlers:
            if query.startswith(prefix):
                recs, counters = fn(query, parameters_ or {})
                break
        summary = MagicMock()
        summary.counters = SimpleNamespace(**{"nodes_created": 0, "relationships_created": 0, **counters})
        return neo4j.EagerResult(recs, summary, list(recs[0]) if recs else [])  # type: ignore[arg-type]

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(c.args[0], c.kwargs["parameters_"]) for c in self.driver.execute_query.call_args_list]

    @property
    def queries(self) -> list[str]:
        return [q for q, _ in self.calls]


@pytest.fixture
def fake() -> FakeNeo4j:
    return FakeNeo4j()


@pytest.fixture
def store(fake: FakeNeo4j) -> Neo4jGraphStore:
    return Neo4jGraphStore(fake.driver, database="neo4j", batch_size=5000)


def all_created(kind: str) -> Handler:
    return lambda q, p: ([{"n": len(p["rows"])}], {kind: len(p["rows"])})


def assert_params_match(fake: FakeNeo4j) -> None:
    for q, p in fake.calls:
        assert set(p) == set(C.query_params(q)), q


# --- schema --------------------------------------------------------------------------------------------------------
def test_ensure_schema(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    store.ensure_schema()
    qs = fake.queries
    assert qs == C.neo4j_schema()
    assert len(qs) == len(NODE_TYPES) * 2 + len(EDGE_TYPES) * 2 + 1
    assert qs[0] == "CREATE CONSTRAINT drug_id IF NOT EXISTS FOR (n:Drug) REQUIRE n.id IS UNIQUE"
    assert "CREATE CONSTRAINT label_id IF NOT EXISTS FOR (n:Label) REQUIRE n.id IS UNIQUE" in qs
    assert "CREATE TEXT INDEX disease_search IF NOT EXISTS FOR (n:Disease) ON (n.search)" in qs
    assert "CREATE INDEX interacts_with_eid IF NOT EXISTS FOR ()-[r:INTERACTS_WITH]-() ON (r.eid)" in qs
    assert "CREATE INDEX has_symptom_source IF NOT EXISTS FOR ()-[r:HAS_SYMPTOM]-() ON (r.source)" in qs
    assert qs[-1] == "CREATE CONSTRAINT meta_key IF NOT EXISTS FOR (m:Meta) REQUIRE m.key IS UNIQUE"
    assert all("IF NOT EXISTS" in q for q in qs)
    for c in fake.driver.execute_query.call_args_list:
        assert c.kwargs == {"parameters_": {}, "database_": "neo4j", "routing_": neo4j.RoutingControl.WRITE}


# --- writing -------------------------------------------------------------------------------------------------------
DRUG_UPSERT = (
    "UNWIND $rows AS row MERGE (n:Drug {id: row.id}) ON CREATE SET n.name = row.name SET n += row.props "
    "WITH n, row, CASE WHEN toLower(n.name) = toLower(row.name) THEN row.aliases ELSE row.aliases + [row.name] END "
    "AS names SET n.aliases = reduce(acc = coalesce(n.aliases, []), a IN names | CASE WHEN a IN acc THEN acc ELSE "
    "acc + [a] END), n.sources = reduce(acc = coalesce(n.sources, []), s IN row.sources | CASE WHEN s IN acc THEN "
    "acc ELSE acc + [s] END) WITH n SET n.search = '\\n' + toLower(reduce(acc = n.id + '\\n' + n.name, a IN "
    "n.aliases | acc + '\\n' + a)) + '\\n'"
)


def test_upsert_nodes(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("UNWIND $rows AS row MERGE", all_created("nodes_created"))
    n = store.upsert_nodes([
        Node("Disease", "感冒", "感冒", {"sources": ["cmedkg"]}),
        Node("Drug", "warfarin", "Warfarin", {"sources": ["ddinter"], "aliases": ["Coumadin"], "ids": ["DDInter1"],
                                               "meta": {"k": 1}, "none": None}),
        Node("Drug", "warfarin", "WARFARIN SODIUM", {"sources": ["openfda"]}),
        Node("Symptom", "发热", "发热"),
    ])
    assert n == 3
    assert fake.calls == [
        (DRUG_UPSERT, {"rows": [{"id": "warfarin", "name": "Warfarin",
                                 "props": {"ids": ["DDInter1"], "meta": '{"k": 1}'},
                                 "aliases": ["Coumadin", "WARFARIN SODIUM"], "sources": ["ddinter", "openfda"]}]}),
        ("UNWIND $rows AS row MERGE (n:Disease {id: row.id}) SET n += row.props, n.name = row.name, "
         "n.search = row.search",
         {"rows": [{"id": "感冒", "name": "感冒", "search": "\n感冒\n", "props": {"sources": ["cmedkg"]}}]}),
        ("UNWIND $rows AS row MERGE (n:Symptom {id: row.id}) SET n += row.props, n.name = row.name, "
         "n.search = row.search",
         {"rows": [{"id": "发热", "name": "发热", "search": "\n发热\n", "props": {}}]}),
    ]


def test_upsert_nodes_batches(fake: FakeNeo4j) -> None:
    store = Neo4jGraphStore(fake.driver, batch_size=2)
    fake.on("UNWIND", all_created("nodes_created"))
    assert store.upsert_nodes([Node("Food", f"f{i}", f"F{i}") for i in range(5)]) == 5
    assert [len(p["rows"]) for _, p in fake.calls] == [2, 2, 1]
    assert [c.kwargs["database_"] for c in fake.driver.execute_query.call_args_list] == ["neo4j"] * 3


def test_upsert_edges(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("UNWIND $rows AS row MATCH", all_created("relationships_created"))
    n = store.upsert_edges(
        [
            Edge("RECOMMAND_DRUG", "Disease", "感冒", "Drug", "阿莫西林", {"source": "cmedkg"}),
            Edge(
                "INTERACTS_WITH",
                "Drug",
                "warfarin",
                "Drug",
                "aspirin",
                {"level": "Major", "source": "ddinter", "sources": ["a.csv", "b.csv"], "conflict": False},
            ),
            Edge(
                "RECOMMAND_DRUG", "Disease", "感冒", "Drug", "阿莫西林", {"source": "cmedkg", "rank": 2}
            ),  # dup: last wins
        ]
    )
    assert n == 2
    assert fake.calls == [
        (
            "UNWIND $rows AS row MATCH (a:Drug {id: row.src}) MATCH (b:Drug {id: row.dst}) "
            "MERGE (a)-[r:INTERACTS_WITH {eid: row.eid}]->(b) SET r.source = row.source, r += row.props "
            "RETURN count(r) AS n",
            {
                "rows": [
                    {
                        "src": "aspirin",
                        "dst": "warfarin",
                        "eid": "INTERACTS_WITH:aspirin|warfarin",
                        "source": "ddinter",
                        "props": {"level": "Major", "sources": ["a.csv", "b.csv"], "conflict": False},
                    }
                ]
            },
        ),
        (
            "UNWIND $rows AS row MATCH (a:Disease {id: row.src}) MATCH (b:Drug {id: row.dst}) "
            "MERGE (a)-[r:RECOMMAND_DRUG {eid: row.eid}]->(b) SET r.source = row.source, r += row.props "
            "RETURN count(r) AS n",
            {
                "rows": [
                    {
                        "src": "感冒",
                        "dst": "阿莫西林",
                        "eid": "RECOMMAND_DRUG:感冒|阿莫西林",
                        "source": "cmedkg",
                        "props": {"rank": 2},
                    }
                ]
            },
        ),
    ]


def test_upsert_edges_missing_endpoint(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("UNWIND", lambda q, p: ([{"n": len(p["rows"]) - 1}], {"relationships_created": len(p["rows"]) - 1}))
    with pytest.raises(InvalidInput, match="missing endpoint"):
        store.upsert_edges([Edge("HAS_SYMPTOM", "Disease", "d", "Symptom", f"s{i}") for i in range(3)])


def test_delete_source_loops_in_batches(fake: FakeNeo4j) -> None:
    store = Neo4jGraphStore(fake.driver, batch_size=2)
    left = {"INTERACTS_WITH": 5}

    def delete(q: str, p: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        t = q.split("[r:")[1].split("]")[0]
        n = min(p["batch"], left.get(t, 0))
        left[t] = left.get(t, 0) - n
        return [{"n": n}], {}

    fake.on("MATCH ()-[r:", delete)
    assert store.delete_source("ddinter") == 5
    iw = "MATCH ()-[r:INTERACTS_WITH]->() WHERE r.source = $source WITH r LIMIT $batch DELETE r RETURN count(*) AS n"
    assert fake.calls[:3] == [(iw, {"source": "ddinter", "batch": 2})] * 3
    assert len(fake.calls) == 3 + len(EDGE_TYPES) - 1
    assert fake.calls[3] == (
        "MATCH ()-[r:RECOMMAND_DRUG]->() WHERE r.source = $source WITH r LIMIT $batch DELETE r RETURN count(*) AS n",
        {"source": "ddinter", "batch": 2},
    )


def test_fingerprints(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    assert store.get_source_fingerprint("ddinter") is None
    fake.on("MATCH (m:Meta", lambda q, p: ([{"value": "abc"}], {}))
    assert store.get_source_fingerprint("ddinter") == "abc"
    store.set_source_fingerprint("cmedkg", "f1")
    assert fake.calls == [
        ("MATCH (m:Meta {key: $key}) RETURN m.value AS value", {"key": "fingerprint:ddinter"}),
        ("MATCH (m:Meta {key: $key}) RETURN m.value AS value", {"key": "fingerprint:ddinter"}),
        ("MERGE (m:Meta {key: $key}) SET m.value = $value", {"key": "fingerprint:cmedkg", "value": "f1"}),
    ]


def test_upsert_label(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("UNWIND $rows AS row MATCH (a:", all_created("relationships_created"))
    props = {
        "title": "Lipitor",
        "version": None,
        "language": "en",
        "source": "spl",
        "content_hash": "h1",
        "sections": 12,
    }
    store.upsert_label(
        "set-1", props, [Node("Drug", "atorvastatin", "ATORVASTATIN CALCIUM"), Node("Drug", "lipitor", "Lipitor")]
    )
    qs = fake.calls
    assert qs[0] == (
        DRUG_UPSERT,
        {
            "rows": [
                {"id": "atorvastatin", "name": "ATORVASTATIN CALCIUM", "props": {}, "aliases": [], "sources": []},
                {"id": "lipitor", "name": "Lipitor", "props": {}, "aliases": [], "sources": []},
            ]
        },
    )
    assert qs[1] == (
        "UNWIND $rows AS row MERGE (n:Label {id: row.id}) SET n = row.props",
        {
            "rows": [
                {
                    "id": "set-1",
                    "props": {
                        "title": "Lipitor",
                        "language": "en",
                        "source": "spl",
                        "content_hash": "h1",
                        "sections": 12,
                        "id": "set-1",
                        "name": "Lipitor",
                        "search": "\nset-1\nlipitor\n",
                    },
                }
            ]
        },
    )
    assert qs[2] == (
        "UNWIND $rows AS row MATCH (d:Drug)-[r:HAS_LABEL]->(l:Label {id: row.id}) WHERE NOT d.id IN row.drugs DELETE r",
        {"rows": [{"id": "set-1", "drugs": ["atorvastatin", "lipitor"]}]},
    )
    assert qs[3] == (
        "UNWIND $rows AS row MATCH (a:Drug {id: row.src}) MATCH (b:Label {id: row.dst}) "
        "MERGE (a)-[r:HAS_LABEL {eid: row.eid}]->(b) SET r.source = row.source, r += row.props "
        "RETURN count(r) AS n",
        {
            "rows": [
                {
                    "src": "atorvastatin",
                    "dst": "set-1",
                    "eid": "HAS_LABEL:atorvastatin|set-1",
                    "source": "spl",
                    "props": {},
                },
                {"src": "lipitor", "dst": "set-1", "eid": "HAS_LABEL:lipitor|set-1", "source": "spl", "props": {}},
            ]
        },
    )
    assert len(qs) == 4


def test_upsert_labels_batches_statements(fake: FakeNeo4j) -> None:
    store = Neo4jGraphStore(fake.driver, batch_size=100)
    fake.on("UNWIND $rows AS row MATCH (a:", all_created("relationships_created"))
    items = [
        (f"L{i}", {"title": f"T{i}", "content_hash": str(i)}, [Node("Drug", f"d{i}", f"D{i}")]) for i in range(250)
    ]
    store.upsert_labels(items)
    kinds = [q.split(" SET")[0].split(" WHERE")[0][:60] for q in fake.queries]
    assert len(fake.queries) == 12  # 3 batches each: drugs, labels, prune, edges
    assert kinds.count(kinds[0]) == 3
    store.upsert_labels([])
    assert len(fake.queries) == 12


def test_delete_label_and_hashes(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("MATCH (l:Label {id: $id}) DETACH DELETE", lambda q, p: ([{"n": 1 if p["id"] == "L1" else 0}], {}))
    fake.on(
        "MATCH (l:Label) RETURN",
        lambda q, p: ([{"id": "L1", "content_hash": "h"}, {"id": "L2", "content_hash": None}], {}),
    )
    assert store.delete_label("L1") is True
    assert store.delete_label("L9") is False
    assert store.label_hashes() == {"L1": "h"}
    assert fake.calls[0] == ("MATCH (l:Label {id: $id}) DETACH DELETE l RETURN count(*) AS n", {"id": "L1"})


# --- reading -------------------------------------------------------------------------------------------------------
def edge_rec(
    t: str, src: str, dst: str, level: str | None = None, direction: str | None = None, **props: Any
) -> dict[str, Any]:
    eid = Edge(t, *EDGE_TYPES[t][:1], src, EDGE_TYPES[t][1], dst).id
    p = {"eid": eid, "source": "x", **props}
    if level:
        p["level"] = level
    r = {"type": t, "src": src, "src_name": src.upper(), "dst": dst, "dst_name": dst.upper(), "eid": eid, "props": p}
    if direction:
        r["dir"] = direction
    return r


def test_get_edge_is_anchored_on_both_endpoints(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("MATCH (a:Drug {id: $src})", lambda q, p: ([edge_rec("INTERACTS_WITH", "a", "b", "Major")], {}))
    got = store.get_edge("INTERACTS_WITH:a|b")
    assert fake.calls == [
        (
            "MATCH (a:Drug {id: $src})-[r:INTERACTS_WITH {eid: $eid}]->(b:Drug {id: $dst}) RETURN 'INTERACTS_WITH' "
            "AS type, a.id AS src, a.name AS src_name, b.id AS dst, b.name AS dst_name, r.eid AS eid, properties(r) AS "
            "props",
            {"src": "a", "dst": "b", "eid": "INTERACTS_WITH:a|b"},
        )
    ]
    assert got is not None and got["props"]["level"] == "Major"
    assert store.get_edge("BOGUS:a|b") is None and len(fake.calls) == 1  # nothing sent for a malformed id


def test_interactions_between(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("MATCH (a:Drug)-[r:INTERACTS_WITH]", lambda q, p: ([edge_rec("INTERACTS_WITH", "a", "b", "Major")], {}))
    got = store.interactions_between(["b", "a", "a", ""])
    assert fake.calls == [
        (
            "MATCH (a:Drug)-[r:INTERACTS_WITH]->(b:Drug) WHERE a.id IN $ids AND b.id IN $ids RETURN 'INTERACTS_WITH' "
            "AS type, a.id AS src, a.name AS src_name, b.id AS dst, b.name AS dst_name, r.eid AS eid, properties(r) AS "
            "props ORDER BY eid",
            {"ids": ["a", "b"]},
        )
    ]
    assert fake.driver.execute_query.call_args.kwargs["routing_"] == neo4j.RoutingControl.READ
    assert got == [
        {
            "id": "INTERACTS_WITH:a|b",
            "type": "INTERACTS_WITH",
            "src": "a",
            "src_type": "Drug",
            "src_name": "A",
            "dst": "b",
            "dst_type": "Drug",
            "dst_name": "B",
            "props": {"source": "x", "level": "Major"},
        }
    ]
    assert store.interactions_between(["a"]) == [] and len(fake.calls) == 1


def test_interactions_of(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    store.interactions_of("warfarin", limit=7)
    assert fake.calls == [
        (
            "MATCH (:Drug {id: $id})-[r:INTERACTS_WITH]-(:Drug) WITH DISTINCT r WITH r, startNode(r) AS a, "
            "endNode(r) AS b RETURN 'INTERACTS_WITH' AS type, a.id AS src, a.name AS src_name, b.id AS dst, "
            "b.name AS dst_name, r.eid "
            "AS eid, properties(r) AS props ORDER BY CASE r.level WHEN 'Major' THEN 0 WHEN 'Moderate' THEN 1 WHEN "
            "'Minor' THEN 2 ELSE 3 END, CASE WHEN a.id = $id THEN b.name ELSE a.name END, eid LIMIT $limit",
            {"id": "warfarin", "limit": 7},
        )
    ]


def test_find_entities(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    def recs(q: str, p: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        return [
            {
                "type": "Disease",
                "id": "小儿感冒",
                "name": "小儿感冒",
                "props": {"id": "小儿感冒", "search": "s"},
                "exact": False,
            },
            {"type": "Drug", "id": "感冒灵", "name": "感冒灵颗粒", "props": {"aliases": []}, "exact": False},
            {"type": "Disease", "id": "感冒", "name": "感冒", "props": {}, "exact": True},
        ], {}

    fake.on("MATCH (n:", recs)
    got = store.find_entities("  感冒 ", limit=2, types=["Disease", "Drug"])
    assert [(n["type"], n["id"]) for n in got] == [("Disease", "感冒"), ("Disease", "小儿感冒")]
    assert got[1]["props"] == {}  # id/name/search are not props
    q, p = fake.calls[0]
    assert q == (
        "MATCH (n:Drug) WHERE n.search CONTAINS $q RETURN 'Drug' AS type, n.id AS id, n.name AS name, properties(n) "
        "AS props, n.search CONTAINS $qx AS exact ORDER BY exact DESC, size(n.name) ASC, id ASC LIMIT $limit "
        "UNION ALL "
        "MATCH (n:Disease) WHERE n.search CONTAINS $q RETURN 'Disease' AS type, n.id AS id, n.name AS name, "
        "properties(n) AS props, n.search CONTAINS $qx AS exact ORDER BY exact DESC, size(n.name) ASC, id ASC "
        "LIMIT $limit"
    )
    assert p == {"q": "感冒", "qx": "\n感冒\n", "limit": 2}
    store.find_entities("Warfarin")
    assert fake.calls[1] == (C.neo4j_find(NODE_TYPES), {"q": "warfarin", "qx": "\nwarfarin\n", "limit": 20})
    assert store.find_entities("   ") == [] and len(fake.calls) == 2


def test_neighbourhood(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("MATCH (n:Disease {id: $id})", lambda q, p: ([{"id": "感冒", "name": "感冒", "props": {}}], {}))

    def expand(q: str, p: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        if "ids_Disease" in p:
            return [edge_rec("HAS_SYMPTOM", "感冒", f"s{i}", direction="out") for i in range(3)] + [
                edge_rec("CURE_DEPARTMENT", "感冒", "内科", direction="out")
            ], {}
        return [
            edge_rec("HAS_SYMPTOM", "感冒", "s0", direction="in"),  # the way back: already seen
            edge_rec("HAS_SYMPTOM", "其他", "s0", direction="in"),
        ], {}

    fake.on("MATCH (a:Disease)-", expand)
    fake.on(
        "MATCH (n:",
        lambda q, p: (
            [{"type": t, "id": i, "name": i, "props": {}} for t in NODE_TYPES for i in p.get(f"ids_{t}", [])],
            {},
        ),
    )
    nodes, edges, truncated = store.neighbourhood(
        "Disease", "感冒", depth=1, edge_types=["HAS_SYMPTOM", "CURE_DEPARTMENT"], limit=2
    )
    assert truncated and [e["id"] for e in edges] == ["HAS_SYMPTOM:感冒|s0", "HAS_SYMPTOM:感冒|s1"]
    assert [n["id"] for n in nodes] == ["感冒", "s0", "s1"]
    q_start, q_expand, q_nodes = fake.calls
    assert q_start == (
        "MATCH (n:Disease {id: $id}) RETURN n.id AS id, n.name AS name, properties(n) AS props",
        {"id": "感冒"},
    )
    assert q_expand == (
        "MATCH (a:Disease)-[r:HAS_SYMPTOM]->(b:Symptom) WHERE a.id IN $ids_Disease RETURN 'HAS_SYMPTOM' AS type, "
        "'out' AS dir, a.id AS src, a.name AS src_name, b.id AS dst, b.name AS dst_name, r.eid AS eid, "
        "properties(r) AS props ORDER BY eid LIMIT $cap UNION ALL "
        "MATCH (a:Disease)-[r:CURE_DEPARTMENT]->(b:Department) WHERE a.id IN $ids_Disease RETURN 'CURE_DEPARTMENT' "
        "AS type, 'out' AS dir, a.id AS src, a.name AS src_name, b.id AS dst, b.name AS dst_name, r.eid AS eid, "
        "properties(r) AS props ORDER BY eid LIMIT $cap",
        {"ids_Disease": ["感冒"], "cap": 3},
    )
    assert q_nodes == (
        "MATCH (n:Symptom) WHERE n.id IN $ids_Symptom RETURN 'Symptom' AS type, n.id AS id, n.name AS name, "
        "properties(n) AS props",
        {"ids_Symptom": ["s0", "s1"]},
    )
    # two hops, enough room: the second hop is anchored on the symptoms and the department
    fake.driver.execute_query.reset_mock()
    nodes, edges, truncated = store.neighbourhood(
        "Disease", "感冒", depth=2, edge_types=["HAS_SYMPTOM", "CURE_DEPARTMENT"], limit=100
    )
    assert not truncated
    assert len(edges) == 5 and {n["id"] for n in nodes} == {"感冒", "s0", "s1", "s2", "内科", "其他"}
    hop2_q, hop2_p = fake.calls[2]
    assert hop2_q == C.neo4j_expand((("HAS_SYMPTOM", False), ("CURE_DEPARTMENT", False)))
    assert hop2_p == {"ids_Symptom": ["s0", "s1", "s2"], "ids_Department": ["内科"], "cap": 100 + 1}
    assert_params_match(fake)


def test_edges_of_and_labels(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    store.edges_of("Label", "L1")
    assert fake.calls[-1] == (C.neo4j_expand((("HAS_LABEL", False),)), {"ids_Label": ["L1"], "cap": 100})
    store.labels_of_drug("warfarin")
    assert fake.calls[-1] == (
        "MATCH (d:Drug {id: $id})-[:HAS_LABEL]->(l:Label) RETURN l.id AS id ORDER BY id",
        {"id": "warfarin"},
    )
    fake.on(
        "MATCH (d:Drug)-[:HAS_LABEL]", lambda q, p: ([{"drug": "a", "label": "L1"}, {"drug": "a", "label": "L2"}], {})
    )
    assert store.drug_label_index() == {"a": ["L1", "L2"]}


def test_counts_and_names(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("MATCH (n:Drug) RETURN count", lambda q, p: ([{"n": 4}], {}))
    fake.on("MATCH (n:Drug) RETURN n.id", lambda q, p: ([{"id": "a", "name": "A", "aliases": ["Alpha"]}], {}))
    c = store.counts()
    assert c["nodes"]["Drug"] == 4 and c["nodes"]["Label"] == 0 and set(c["edges"]) == set(EDGE_TYPES)
    assert store.names("Drug") == [("a", "A"), ("a", "Alpha")]
    assert fake.calls[-1] == (
        "MATCH (n:Drug) RETURN n.id AS id, n.name AS name, coalesce(n.aliases, []) AS aliases",
        {},
    )


# --- safety --------------------------------------------------------------------------------------------------------
EVIL = ["x'\"}) DETACH DELETE n //", "'; MATCH (n) DETACH DELETE n; //", "$ids", "`Drug`", "\\u0027"]


def test_user_values_only_travel_as_parameters(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.on("UNWIND $rows AS row MATCH (a:", all_created("relationships_created"))
    for evil in EVIL:
        store.upsert_nodes(
            [Node("Drug", evil, evil, {"aliases": [evil], evil: evil}), Node("Disease", evil, evil, {"note": evil})]
        )
        store.upsert_edges([Edge("RECOMMAND_DRUG", "Disease", evil, "Drug", evil, {"source": evil, "x": evil})])
        store.upsert_label(evil, {"title": evil, "source": evil}, [Node("Drug", evil, evil)])
        store.delete_label(evil)
        store.delete_source(evil)
        store.set_source_fingerprint(evil, evil)
        store.get_source_fingerprint(evil)
        store.find_entities(evil)
        store.get_node("Drug", evil)
        store.interactions_between([evil, "warfarin"])
        store.interactions_of(evil)
        store.edges_of("Drug", evil)
        store.neighbourhood("Drug", evil, depth=3)
        store.labels_of_drug(evil)
    assert fake.calls
    for q in fake.queries:
        for evil in EVIL[:2]:
            assert evil not in q and evil.lower() not in q
    assert_params_match(fake)
    sent = repr([p for _, p in fake.calls])
    assert all(repr(e)[1:-1] in sent for e in EVIL[:2])


def test_identifiers_come_from_the_whitelist(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    with pytest.raises(InvalidInput):
        store.get_node("Drug) DETACH DELETE n //", "x")
    with pytest.raises(InvalidInput):
        store.upsert_nodes([Node("Drug`) DELETE n", "x", "x")])
    with pytest.raises(InvalidInput):
        store.upsert_edges([Edge("KNOWS]->() DELETE r //", "Drug", "a", "Drug", "b")])
    with pytest.raises(InvalidInput):
        store.neighbourhood("Drug", "x", edge_types=["HAS_LABEL|KNOWS"])
    with pytest.raises(InvalidInput):
        store.find_entities("x", types=["Person"])
    with pytest.raises(InvalidInput):
        store.neighbourhood("Drug", "x", depth=0)
    assert not fake.calls


def test_parameters_are_checked_before_sending() -> None:
    with pytest.raises(ValueError, match="missing"):
        C.check_params("MATCH (n:Drug {id: $id}) RETURN n", {})
    with pytest.raises(ValueError, match="unexpected"):
        C.check_params("MATCH (n:Drug {id: $id}) RETURN n", {"id": 1, "other": 2})
    C.check_params("MATCH (n:Drug {id: $id}) RETURN n", {"id": 1})


# --- errors --------------------------------------------------------------------------------------------------------
def test_unreachable_and_auth_errors_map_to_store_unavailable(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    fake.driver.execute_query.side_effect = ServiceUnavailable("Couldn't connect to localhost:7687")
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.counts()
    fake.driver.execute_query.side_effect = AuthError("The client is unauthorized due to authentication failure.")
    with pytest.raises(StoreUnavailable, match="credentials"):
        store.upsert_nodes([Node("Drug", "a", "A")])
    fake.driver.execute_query.side_effect = CypherSyntaxError("bad")
    with pytest.raises(CypherSyntaxError):  # a bug, not an outage: not disguised
        store.get_node("Drug", "a")


def test_own_driver_is_verified_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    drv = create_autospec(neo4j.Driver, instance=True)
    made: list[tuple[str, Any]] = []

    def factory(uri: str, auth: Any = None, **kw: Any) -> Any:
        made.append((uri, auth))
        return drv

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", factory)
    st = Neo4jGraphStore("bolt://db:7687", "neo4j", "secret", "graph")
    assert made == [("bolt://db:7687", ("neo4j", "secret"))]
    drv.verify_connectivity.assert_called_once()
    st.get_node("Drug", "a")
    assert drv.execute_query.call_args.kwargs["database_"] == "graph"
    st.close()
    drv.close.assert_called_once()
    drv.verify_connectivity.side_effect = AuthError("unauthorized")
    with pytest.raises(StoreUnavailable, match="credentials") as ei:
        Neo4jGraphStore("bolt://db:7687", "neo4j", "wrong")
    assert "wrong" not in str(ei.value)
    assert drv.close.call_count == 2


def test_injected_driver_not_closed(store: Neo4jGraphStore, fake: FakeNeo4j) -> None:
    store.close()
    fake.driver.close.assert_not_called()


def test_real_unreachable_server() -> None:
    with pytest.raises(StoreUnavailable, match="unreachable"):
        Neo4jGraphStore("bolt://127.0.0.1:1", "neo4j", "x")


def test_is_a_graph_store(store: Neo4jGraphStore) -> None:
    assert isinstance(store, GraphStore)


# --- the shared contract against a real server (docker-compose) ---------------------------------------------------
def _server_store() -> Neo4jGraphStore:
    try:
        return Neo4jGraphStore(
            os.environ.get("DRUGRAG_NEO4J_URI", "bolt://localhost:7687"),
            os.environ.get("DRUGRAG_NEO4J_USER", "neo4j"),
            os.environ.get("DRUGRAG_NEO4J_PASSWORD", "drugrag-dev"),
            os.environ.get("DRUGRAG_NEO4J_DATABASE", "neo4j"),
        )
    except StoreUnavailable as e:
        pytest.skip(f"no Neo4j server ({type(e.__cause__).__name__})")


@pytest.mark.neo4j
class TestNeo4jContract(GraphStoreContract):
    @pytest.fixture
    def empty_store(self) -> Iterator[Neo4jGraphStore]:
        st = _server_store()
        st._driver.execute_query("MATCH (n) DETACH DELETE n", database_=st.database)  # test-only wipe
        st.ensure_schema()
        yield st
        st.close()

    @pytest.fixture
    def sample_store(self, empty_store: Neo4jGraphStore) -> Neo4jGraphStore:
        load(empty_store, sample())
        return empty_store
