"""Real-data samples and the GraphStore contract shared by the graph backends' tests.

The samples are read straight from the shared DDInter / CMeKG CSVs with the csv module (not the kb_loaders, which
are tested on their own), with Drug ids made by kb_loaders.names.base_name as the loaders do.

A backend's test module subclasses GraphStoreContract and provides two function-scoped fixtures:
  empty_store  → an empty store with its schema
  sample_store → a store holding SAMPLE (ddinter_sample() + cmedkg_sample())
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from graph.store import EDGE_TYPES, NODE_TYPES, GraphStore
from kb_loaders.model import Edge, Node
from kb_loaders.names import base_name
from rag.core.errors import InvalidInput

DATA = Path(os.environ.get("DRUGRAG_DATA_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
DDINTER = DATA / "ddinter"
CMEDKG_REL = DATA / "cmedkg" / "rel"
CMEDKG_RELS: dict[str, tuple[str, str]] = {  # file stem → (edge type, target node type)
    "recommand_drug": ("RECOMMAND_DRUG", "Drug"), "common_drug": ("COMMON_DRUG", "Drug"),
    "has_symptom": ("HAS_SYMPTOM", "Symptom"), "need_check": ("NEED_CHECK", "Check"),
    "recommand_eat": ("RECOMMAND_EAT", "Food"), "no_eat": ("NO_EAT", "Food"), "do_eat": ("DO_EAT", "Food"),
    "cure_way": ("CURE_WAY", "Cure"), "acompany_with": ("ACOMPANY_WITH", "Disease"),
    "cure_department": ("CURE_DEPARTMENT", "Department"),
}
SEV = {"Major": 0, "Moderate": 1, "Minor": 2, "Unknown": 3}

needs_data = pytest.mark.skipif(not (DDINTER / "ddinter_downloads_code_A.csv").exists(),
                                reason=f"shared data not found under {DATA}")


@dataclass
class Sample:
    nodes: dict[tuple[str, str], Node] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)

    def add_node(self, n: Node) -> None:
        self.nodes.setdefault((n.type, n.id), n)

    def add_edge(self, e: Edge) -> None:
        self.edges[e.id] = e  # a pair given twice: the last one wins, as in the stores

    def __add__(self, other: Sample) -> Sample:
        out = Sample(dict(self.nodes), dict(self.edges))
        for n in other.nodes.values():
            out.add_node(n)
        out.edges.update(other.edges)
        return out

    def node_counts(self) -> dict[str, int]:
        c = Counter(t for t, _ in self.nodes)
        return {t: c.get(t, 0) for t in NODE_TYPES}

    def edge_counts(self) -> dict[str, int]:
        c = Counter(e.type for e in self.edges.values())
        return {t: c.get(t, 0) for t in EDGE_TYPES}


_base = cache(base_name)


def read_ddinter(files: list[Path], max_rows: int | None = None) -> Sample:
    s = Sample()
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                if max_rows is not None and i >= max_rows:
                    break
                a, b = _base(row["Drug_A"]), _base(row["Drug_B"])
                if not a or not b or a == b:
                    continue
                s.add_node(Node("Drug", a, row["Drug_A"], {"sources": ["ddinter"]}))
                s.add_node(Node("Drug", b, row["Drug_B"], {"sources": ["ddinter"]}))
                s.add_edge(Edge("INTERACTS_WITH", "Drug", a, "Drug", b,
                                {"level": row["Level"], "source": "ddinter", "sources": [f.name]}))
    return s


def read_cmedkg(stems: list[str], max_rows: int | None = None) -> Sample:
    s = Sample()
    for stem in stems:
        etype, ttype = CMEDKG_RELS[stem]
        with (CMEDKG_REL / f"{stem}.csv").open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                if max_rows is not None and i >= max_rows:
                    break
                src, tag = row["src_id"].strip(), row["tag_id"].strip()
                dst = _base(tag) if ttype == "Drug" else tag
                if not src or not dst:
                    continue
                s.add_node(Node("Disease", src, src, {"sources": ["cmedkg"]}))
                s.add_node(Node(ttype, dst, tag, {"sources": ["cmedkg"]}))
                s.add_edge(Edge(etype, "Disease", src, ttype, dst, {"source": "cmedkg"}))
    return s


@cache
def ddinter_sample() -> Sample:
    """The first 3,000 rows of DDInter's ATC-A file."""
    return read_ddinter([DDINTER / "ddinter_downloads_code_A.csv"], 3000)


@cache
def cmedkg_sample() -> Sample:
    """3,000 rows each of recommand_drug and has_symptom, and every cure_department edge (department hubs)."""
    return read_cmedkg(["recommand_drug", "has_symptom"], 3000) + read_cmedkg(["cure_department"])


@cache
def sample() -> Sample:
    return ddinter_sample() + cmedkg_sample()


def load(store: GraphStore, s: Sample) -> tuple[int, int]:
    return store.upsert_nodes(list(s.nodes.values())), store.upsert_edges(list(s.edges.values()))


def drug(i: str, name: str | None = None, **props: Any) -> Node:
    return Node("Drug", i, name or i, props)


@needs_data
class GraphStoreContract:
    """Behaviour every GraphStore must have; runs on real data subsets."""

    # --- writing -----------------------------------------------------------------------------------------------
    def test_sample_counts_and_idempotent_reload(self, sample_store: GraphStore) -> None:
        s = sample()
        c = sample_store.counts()
        assert c["nodes"] == s.node_counts()
        assert c["edges"] == s.edge_counts()
        assert load(sample_store, s) == (0, 0)
        assert sample_store.counts() == c

    def test_load_returns_new_counts(self, empty_store: GraphStore) -> None:
        s = ddinter_sample()
        assert load(empty_store, s) == (len(s.nodes), len(s.edges))
        more = read_ddinter([DDINTER / "ddinter_downloads_code_A.csv"], 3500)
        n_new, e_new = load(empty_store, more)
        assert (n_new, e_new) == (len(more.nodes) - len(s.nodes), len(more.edges) - len(s.edges))

    def test_schema_idempotent(self, sample_store: GraphStore) -> None:
        before = sample_store.counts()
        sample_store.ensure_schema()
        sample_store.ensure_schema()
        assert sample_store.counts() == before

    def test_edge_props_update_without_duplicates(self, sample_store: GraphStore) -> None:
        e = next(iter(ddinter_sample().edges.values()))
        new_level = "Minor" if e.props["level"] != "Minor" else "Major"
        changed = Edge(e.type, e.src_type, e.dst, e.dst_type, e.src, {**e.props, "level": new_level})  # reversed
        assert changed.id == e.id
        assert sample_store.upsert_edges([changed]) == 0
        got = sample_store.interactions_between([e.src, e.dst])
        assert [(g["id"], g["props"]["level"]) for g in got] == [(e.id, new_level)]
        assert sample_store.counts()["edges"]["INTERACTS_WITH"] == ddinter_sample().edge_counts()["INTERACTS_WITH"]

    def test_small_batches(self, empty_store: GraphStore) -> None:
        empty_store.upsert_nodes([drug("a", "A"), drug("b", "B"), drug("c", "C"), Node("Disease", "d", "D")])
        assert empty_store.upsert_edges([
            Edge("INTERACTS_WITH", "Drug", "b", "Drug", "a", {"level": "Minor", "source": "t"}),
            Edge("INTERACTS_WITH", "Drug", "a", "Drug", "c", {"level": "Major", "source": "t", "conflict": True}),
            Edge("RECOMMAND_DRUG", "Disease", "d", "Drug", "a", {"source": "t", "rank": 1}),
        ]) == 3
        got = empty_store.interactions_of("a")
        assert [(g["src"], g["dst"], g["props"]["level"]) for g in got] == [("a", "c", "Major"), ("a", "b", "Minor")]
        assert got[0]["props"] == {"level": "Major", "source": "t", "conflict": True}
        assert empty_store.upsert_edges([Edge("RECOMMAND_DRUG", "Disease", "d", "Drug", "a",
                                              {"source": "t2", "rank": 2})]) == 0
        (e,) = empty_store.edges_of("Drug", "a", edge_types=["RECOMMAND_DRUG"])
        assert e["props"] == {"source": "t2", "rank": 2} and e["src_name"] == "D" and e["dst_name"] == "A"

    def test_edges_need_their_nodes(self, empty_store: GraphStore) -> None:
        empty_store.upsert_nodes([drug("a")])
        with pytest.raises(InvalidInput):
            empty_store.upsert_edges([Edge("INTERACTS_WITH", "Drug", "a", "Drug", "nope", {"level": "Major"})])
        assert empty_store.counts()["edges"]["INTERACTS_WITH"] == 0

    def test_unknown_types_rejected(self, empty_store: GraphStore) -> None:
        with pytest.raises(InvalidInput):
            empty_store.upsert_nodes([Node("Drug) DETACH DELETE n //", "x", "x")])
        with pytest.raises(InvalidInput):
            empty_store.upsert_edges([Edge("KNOWS", "Drug", "a", "Drug", "b")])
        with pytest.raises(InvalidInput):
            empty_store.upsert_edges([Edge("HAS_SYMPTOM", "Drug", "a", "Symptom", "b")])  # wrong end type
        with pytest.raises(InvalidInput):
            empty_store.get_node("Person", "x")
        with pytest.raises(InvalidInput):
            empty_store.neighbourhood("Drug", "x", depth=4)
        with pytest.raises(InvalidInput):
            empty_store.edges_of("Drug", "x", edge_types=["FRIEND_OF"])

    def test_delete_source(self, sample_store: GraphStore) -> None:
        s = sample()
        assert sample_store.delete_source("ddinter") == s.edge_counts()["INTERACTS_WITH"]
        c = sample_store.counts()
        assert c["edges"]["INTERACTS_WITH"] == 0
        assert c["edges"]["HAS_SYMPTOM"] == s.edge_counts()["HAS_SYMPTOM"]
        assert c["nodes"] == s.node_counts()  # nodes stay
        assert sample_store.delete_source("ddinter") == 0
        assert sample_store.delete_source("no such source") == 0

    def test_fingerprints(self, empty_store: GraphStore) -> None:
        assert empty_store.get_source_fingerprint("ddinter") is None
        empty_store.set_source_fingerprint("ddinter", "abc")
        empty_store.set_source_fingerprint("cmedkg", "def")
        empty_store.set_source_fingerprint("ddinter", "xyz")
        assert empty_store.get_source_fingerprint("ddinter") == "xyz"
        assert empty_store.get_source_fingerprint("cmedkg") == "def"

    def test_drug_nodes_merge_names(self, empty_store: GraphStore) -> None:
        empty_store.upsert_nodes([drug("warfarin", "Warfarin", sources=["ddinter"])])
        assert empty_store.upsert_nodes([drug("warfarin", "WARFARIN SODIUM", sources=["openfda"],
                                              aliases=["Coumadin"])]) == 0
        n = empty_store.get_node("Drug", "warfarin")
        assert n is not None and n["name"] == "Warfarin"
        assert set(n["props"]["aliases"]) == {"Coumadin", "WARFARIN SODIUM"}
        assert set(n["props"]["sources"]) == {"ddinter", "openfda"}
        assert ("warfarin", "Coumadin") in empty_store.names("Drug")
        assert [x["id"] for x in empty_store.find_entities("coumadin")] == ["warfarin"]

    def test_hostile_strings_are_data(self, empty_store: GraphStore) -> None:
        evil = "x'\"}) DETACH DELETE n //"
        empty_store.upsert_nodes([Node("Disease", evil, evil), drug("a")])
        empty_store.upsert_edges([Edge("RECOMMAND_DRUG", "Disease", evil, "Drug", "a", {"source": evil})])
        assert empty_store.get_node("Disease", evil) == {"id": evil, "type": "Disease", "name": evil, "props": {}}
        assert [n["id"] for n in empty_store.find_entities(evil)] == [evil]
        assert empty_store.counts()["nodes"]["Drug"] == 1
        assert empty_store.delete_source(evil) == 1

    # --- labels ------------------------------------------------------------------------------------------------
    def test_upsert_label_replaces_edges(self, sample_store: GraphStore) -> None:
        existing = next(n for n in ddinter_sample().nodes.values())
        props = {"title": "Test label", "version": "1", "language": "en", "source": "openfda", "content_hash": "h1"}
        sample_store.upsert_label("L1", props, [drug(existing.id, "Brand X"), drug("brandnewdrug", "Brand New")])
        assert sample_store.labels_of_drug(existing.id) == ["L1"]
        assert sample_store.labels_of_drug("brandnewdrug") == ["L1"]
        assert sample_store.get_node("Drug", existing.id)["name"] == existing.name  # type: ignore[index]
        assert sample_store.label_hashes() == {"L1": "h1"}
        lab = sample_store.get_node("Label", "L1")
        assert lab is not None and lab["name"] == "Test label" and lab["props"]["content_hash"] == "h1"
        e = sample_store.edges_of("Label", "L1")
        assert sorted(x["id"] for x in e) == sorted(Edge("HAS_LABEL", "Drug", d, "Label", "L1").id
                                                    for d in (existing.id, "brandnewdrug"))
        assert {x["props"]["source"] for x in e} == {"openfda"}
        # a new version names one other drug: the old edges go
        sample_store.upsert_label("L1", {**props, "version": "2", "content_hash": "h2"}, [drug("brandnewdrug")])
        assert sample_store.labels_of_drug(existing.id) == []
        assert sample_store.labels_of_drug("brandnewdrug") == ["L1"]
        assert sample_store.label_hashes() == {"L1": "h2"}
        assert sample_store.counts()["edges"]["HAS_LABEL"] == 1
        assert sample_store.drug_label_index() == {"brandnewdrug": ["L1"]}
        assert sample_store.delete_label("L1") is True
        assert sample_store.delete_label("L1") is False
        assert sample_store.counts()["edges"]["HAS_LABEL"] == 0
        assert sample_store.get_node("Drug", "brandnewdrug") is not None  # drugs stay

    def test_upsert_labels_batch(self, sample_store: GraphStore) -> None:
        drugs = [n for n in ddinter_sample().nodes.values()][:60]
        items = [(f"B{i}", {"title": f"Label {i}", "source": "spl", "content_hash": f"h{i}"},
                  [drug(drugs[i].id), drug(drugs[i + 1].id), drug(f"new{i}", f"New {i}")]) for i in range(40)]
        sample_store.upsert_labels(items)
        assert sample_store.counts()["edges"]["HAS_LABEL"] == 120
        assert sample_store.counts()["nodes"]["Label"] == 40
        assert sample_store.labels_of_drug(drugs[1].id) == ["B0", "B1"]
        assert len(sample_store.label_hashes()) == 40
        sample_store.upsert_labels(items)  # idempotent
        assert sample_store.counts()["edges"]["HAS_LABEL"] == 120
        # second version of every even label drops its first drug
        items2 = [(lid, {**p, "content_hash": p["content_hash"] + "b"}, ds[1:] if i % 2 == 0 else ds)
                  for i, (lid, p, ds) in enumerate(items)]
        sample_store.upsert_labels(items2)
        assert sample_store.counts()["edges"]["HAS_LABEL"] == 100
        assert sample_store.labels_of_drug(drugs[0].id) == []
        assert sample_store.label_hashes()["B0"] == "h0b"
        idx = sample_store.drug_label_index()
        assert idx[drugs[1].id] == ["B0", "B1"] and idx[drugs[2].id] == ["B1"]
        assert sum(len(v) for v in idx.values()) == 100

    # --- reading -----------------------------------------------------------------------------------------------
    def test_interactions_between_known_pair(self, sample_store: GraphStore) -> None:
        # first data row of ddinter_downloads_code_A.csv: Naltrexone, Abacavir, Moderate
        for ids in (["naltrexone", "abacavir"], ["abacavir", "naltrexone"], ["abacavir", "naltrexone", "zzz"]):
            got = sample_store.interactions_between(ids)
            assert [(g["src"], g["dst"], g["props"]["level"]) for g in got] == [("abacavir", "naltrexone",
                                                                                "Moderate")]
            assert got[0]["id"] == "INTERACTS_WITH:abacavir|naltrexone"
            assert {got[0]["src_name"], got[0]["dst_name"]} == {"Abacavir", "Naltrexone"}
            assert got[0]["props"]["source"] == "ddinter"
        assert sample_store.interactions_between(["abacavir"]) == []

    def test_get_edge_by_id(self, sample_store: GraphStore) -> None:
        e = sample_store.get_edge("INTERACTS_WITH:abacavir|naltrexone")
        assert e is not None and e["props"]["level"] == "Moderate"
        assert (e["src"], e["dst"]) == ("abacavir", "naltrexone")
        assert e == sample_store.interactions_between(["abacavir", "naltrexone"])[0]
        other = next(x for x in sample().edges.values() if x.type == "RECOMMAND_DRUG")
        got = sample_store.get_edge(other.id)
        assert got is not None and got["id"] == other.id and got["type"] == "RECOMMAND_DRUG"
        for bad in ("INTERACTS_WITH:abacavir|nope", "NOT_A_TYPE:a|b", "no separator", "HAS_LABEL:|x"):
            assert sample_store.get_edge(bad) is None

    def test_interactions_between_matches_csv(self, sample_store: GraphStore) -> None:
        edges = list(ddinter_sample().edges.values())
        for e in edges[::97]:
            got = sample_store.interactions_between([e.dst, e.src])
            assert [(g["id"], g["props"]["level"]) for g in got] == [(e.id, e.props["level"])]
        # a set of drugs: every pair among them that the sample has
        ids = sorted({e.src for e in edges[:40]} | {e.dst for e in edges[:40]})[:12]
        want = {e.id for e in edges if e.src in ids and e.dst in ids}
        assert {g["id"] for g in sample_store.interactions_between(ids)} == want

    def test_interactions_of_most_severe_first(self, sample_store: GraphStore) -> None:
        edges = list(ddinter_sample().edges.values())
        deg = Counter([e.src for e in edges] + [e.dst for e in edges])
        hub, n = deg.most_common(1)[0]
        all_ = sample_store.interactions_of(hub, limit=10_000)
        assert len(all_) == n
        assert all(hub in (g["src"], g["dst"]) for g in all_)
        ranks = [SEV[g["props"]["level"]] for g in all_]
        assert ranks == sorted(ranks)
        top = sample_store.interactions_of(hub, limit=5)
        assert len(top) == 5 and [SEV[g["props"]["level"]] for g in top] == ranks[:5]
        assert sample_store.interactions_of("no such drug") == []

    def test_find_entities(self, sample_store: GraphStore) -> None:
        zh = sample_store.find_entities("感冒", limit=10)
        assert zh[0]["id"] == "感冒" and zh[0]["type"] == "Disease"
        assert all("感冒" in n["name"] for n in zh)
        lens = [len(n["name"]) for n in zh[1:]]
        assert lens == sorted(lens)  # after the exact match, shorter names first
        en = sample_store.find_entities("ABACAVIR")
        assert en[0]["id"] == "abacavir" and en[0]["type"] == "Drug" and en[0]["name"] == "Abacavir"
        assert [n["type"] for n in sample_store.find_entities("感冒", types=["Drug"])] == \
            ["Drug"] * len(sample_store.find_entities("感冒", types=["Drug"]))
        assert len(sample_store.find_entities("a", limit=7)) == 7
        assert sample_store.find_entities("   ") == []
        assert sample_store.find_entities("no such thing at all") == []

    def test_get_node_and_names(self, sample_store: GraphStore) -> None:
        n = sample_store.get_node("Drug", "abacavir")
        assert n is not None and n["name"] == "Abacavir" and n["props"]["sources"] == ["ddinter"]
        assert sample_store.get_node("Drug", "nope") is None
        deps = sample_store.names("Department")
        assert len(deps) == sample().node_counts()["Department"]
        assert ("皮肤科", "皮肤科") in deps

    def test_edges_of(self, sample_store: GraphStore) -> None:
        e = sample_store.edges_of("Disease", "感冒")
        want = {x.id for x in sample().edges.values() if "感冒" in (x.src, x.dst)}
        assert {x["id"] for x in e} == want
        only = sample_store.edges_of("Disease", "感冒", edge_types=["CURE_DEPARTMENT"])
        assert [x["type"] for x in only] == ["CURE_DEPARTMENT"] and only[0]["dst_type"] == "Department"
        edges = list(ddinter_sample().edges.values())
        hub, n = Counter([e.src for e in edges] + [e.dst for e in edges]).most_common(1)[0]
        assert len(sample_store.edges_of("Drug", hub, limit=3)) == 3
        assert len(sample_store.edges_of("Drug", hub, edge_types=["INTERACTS_WITH"], limit=10_000)) == n

    def test_neighbourhood_hub_is_bounded(self, sample_store: GraphStore) -> None:
        deg = Counter(e.dst for e in cmedkg_sample().edges.values() if e.type == "CURE_DEPARTMENT")
        hub, n = deg.most_common(1)[0]
        assert n > 300
        nodes, edges, truncated = sample_store.neighbourhood("Department", hub, depth=1, limit=10)
        assert truncated and len(edges) == 10
        assert nodes[0]["id"] == hub and len(nodes) == 11
        assert {x["id"] for x in nodes[1:]} == {x["src"] for x in edges}
        for depth in (2, 3):
            t = time.perf_counter()
            nodes, edges, truncated = sample_store.neighbourhood("Department", hub, depth=depth, limit=50)
            assert time.perf_counter() - t < 2.0
            assert truncated and len(edges) == 50
            ids = {(x["type"], x["id"]) for x in nodes}
            assert all((x["src_type"], x["src"]) in ids and (x["dst_type"], x["dst"]) in ids for x in edges)
        nodes, edges, truncated = sample_store.neighbourhood("Department", hub, depth=1, limit=n)
        assert not truncated and len(edges) == n

    def test_neighbourhood_depth_two(self, sample_store: GraphStore) -> None:
        nodes, edges, truncated = sample_store.neighbourhood("Disease", "感冒", depth=1, limit=1000)
        one = {x["id"] for x in edges}
        assert not truncated and one == {x.id for x in sample().edges.values() if "感冒" in (x.src, x.dst)}
        nodes2, edges2, _ = sample_store.neighbourhood("Disease", "感冒", depth=2, limit=1000)
        assert one < {x["id"] for x in edges2}
        assert len({x["id"] for x in edges2}) == len(edges2)  # no edge twice
        # every edge within two hops of a drug, as computed from the sample itself
        edges = list(sample().edges.values())
        hub = Counter([e.src for e in edges if e.type == "INTERACTS_WITH"]).most_common(1)[0][0]
        start = ("Drug", hub)
        hop1 = [e for e in edges if start in ((e.src_type, e.src), (e.dst_type, e.dst))]
        ends = {(e.src_type, e.src) for e in hop1} | {(e.dst_type, e.dst) for e in hop1}
        hop2 = {e.id for e in edges if ends & {(e.src_type, e.src), (e.dst_type, e.dst)}}
        nodes3, edges3, truncated3 = sample_store.neighbourhood("Drug", hub, depth=2, limit=100_000)
        assert not truncated3 and {x["id"] for x in edges3} == hop2
        assert {(x["type"], x["id"]) for x in nodes3} == \
            {(t, i) for e in edges if e.id in hop2 for t, i in ((e.src_type, e.src), (e.dst_type, e.dst))}
        cut = sample_store.neighbourhood("Drug", hub, depth=2, limit=len(hop1) + 5)
        assert cut[2] and len(cut[1]) == len(hop1) + 5 and {e.id for e in hop1} <= {x["id"] for x in cut[1]}
        filt = sample_store.neighbourhood("Disease", "感冒", depth=2, edge_types=["CURE_DEPARTMENT"], limit=1000)
        assert {x["type"] for x in filt[1]} == {"CURE_DEPARTMENT"}
        assert sample_store.neighbourhood("Disease", "no such disease") == ([], [], False)
