"""KuzuGraphStore on real data subsets: the shared contract plus kuzu specifics (locking, bad paths, speed)."""

from __future__ import annotations

import gc
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from graph_contract import (
    CMEDKG_RELS,
    DDINTER,
    GraphStoreContract,
    drug,
    load,
    needs_data,
    read_cmedkg,
    read_ddinter,
    sample,
)

from graph.embedded import KuzuGraphStore
from graph.store import GraphStore
from rag.core.errors import StoreUnavailable

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed database file holding the sample; tests get a copy of it."""
    p = tmp_path_factory.mktemp("kuzu_template") / "graph.kuzu"
    with KuzuGraphStore(p) as st:
        load(st, sample())
    return p


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[KuzuGraphStore]:
    st = KuzuGraphStore(tmp_path / "g.kuzu")
    yield st
    st.close()


@pytest.fixture
def sample_store(tmp_path: Path, sample_template: Path) -> Iterator[KuzuGraphStore]:
    dst = tmp_path / "g.kuzu"
    shutil.copyfile(sample_template, dst)
    st = KuzuGraphStore(dst)
    yield st
    st.close()


class TestKuzuContract(GraphStoreContract):
    pass


def test_is_a_graph_store(empty_store: KuzuGraphStore) -> None:
    assert isinstance(empty_store, GraphStore)


@needs_data
def test_reopen_keeps_data_and_schema(sample_template: Path, tmp_path: Path) -> None:
    p = tmp_path / "g.kuzu"
    shutil.copyfile(sample_template, p)
    want = sample()
    for _ in range(2):
        with KuzuGraphStore(p) as st:  # ensure_schema runs on open: idempotent
            assert st.counts()["edges"] == want.edge_counts()
    with KuzuGraphStore(p, read_only=True) as ro:
        assert ro.counts()["nodes"] == want.node_counts()
        assert ro.interactions_between(["abacavir", "naltrexone"])[0]["props"]["level"] == "Moderate"
        with pytest.raises(StoreUnavailable, match="read-only"):
            ro.upsert_nodes([drug("x")])


def test_directory_path_gets_a_file_inside(tmp_path: Path) -> None:
    with KuzuGraphStore(tmp_path) as st:
        st.upsert_nodes([drug("a")])
        assert st.path == tmp_path / "graph.kuzu"
    assert (tmp_path / "graph.kuzu").is_file()


def test_second_store_in_same_process_refused(tmp_path: Path) -> None:
    p = tmp_path / "g.kuzu"
    st = KuzuGraphStore(p)
    try:
        with pytest.raises(StoreUnavailable, match="already open read-write"):
            KuzuGraphStore(p)
        with pytest.raises(StoreUnavailable, match="already open read-write"):
            KuzuGraphStore(p, read_only=True)
    finally:
        st.close()
    st.close()  # twice is fine
    with KuzuGraphStore(p) as again:
        assert again.counts()["nodes"]["Drug"] == 0
    a, b = KuzuGraphStore(p, read_only=True), KuzuGraphStore(p, read_only=True)  # readers may share
    a.close()
    b.close()
    dropped = KuzuGraphStore(p)  # a store dropped without close() does not block the file forever
    del dropped
    gc.collect()
    KuzuGraphStore(p).close()


def test_store_locked_by_another_process(tmp_path: Path) -> None:
    p = tmp_path / "g.kuzu"
    KuzuGraphStore(p).close()
    code = ("import sys; from graph.embedded import KuzuGraphStore; "
            f"s = KuzuGraphStore({str(p)!r}); print('ready', flush=True); sys.stdin.readline(); s.close()")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with pytest.raises(StoreUnavailable, match="in use by another process"):
            KuzuGraphStore(p)
        with pytest.raises(StoreUnavailable, match="in use by another process"):
            KuzuGraphStore(p, read_only=True)
    finally:
        proc.communicate("\n", timeout=30)
    with KuzuGraphStore(p) as st:  # free again once the other process closed it
        assert st.counts()["nodes"]["Drug"] == 0


def test_unusable_paths(tmp_path: Path) -> None:
    junk = tmp_path / "junk.kuzu"
    junk.write_text("this is not a database")
    with pytest.raises(StoreUnavailable, match="not a kuzu graph database"):
        KuzuGraphStore(junk)
    with pytest.raises(StoreUnavailable, match="does not exist"):
        KuzuGraphStore(tmp_path / "missing.kuzu", read_only=True)
    with pytest.raises(StoreUnavailable, match="cannot open"):
        KuzuGraphStore(junk / "sub" / "g.kuzu")  # parent is a file
    # a read-only open of a database without the graph schema
    import kuzu
    bare = tmp_path / "bare.kuzu"
    kuzu.Database(str(bare)).close()
    with pytest.raises(StoreUnavailable, match="no graph schema"):
        KuzuGraphStore(bare, read_only=True)
    KuzuGraphStore(bare).close()  # read-write open creates the schema


def test_closed_store_says_so(tmp_path: Path) -> None:
    st = KuzuGraphStore(tmp_path / "g.kuzu")
    st.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        st.counts()


@needs_data
def test_single_label_upserts_are_fast(sample_store: KuzuGraphStore) -> None:
    drugs = sorted(n.id for n in sample().nodes.values() if n.type == "Drug")
    n = 60
    t = time.perf_counter()
    for i in range(n):
        sample_store.upsert_label(f"S{i}", {"title": f"T{i}", "content_hash": "h", "source": "openfda"},
                                  [drug(drugs[i]), drug(drugs[i + 1]), drug(f"fresh{i}")])
    per = (time.perf_counter() - t) / n * 1000
    log.info("upsert_label: %.1f ms per label (3 drugs, 1 new)", per)
    assert sample_store.counts()["edges"]["HAS_LABEL"] == 3 * n
    assert per < 100  # typically a few ms; generous for a loaded CI machine


@needs_data
def test_query_latency(sample_store: KuzuGraphStore) -> None:
    def ms(f) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            f()
            best = min(best, (time.perf_counter() - t) * 1000)
        return best
    one_hop = ms(lambda: sample_store.edges_of("Disease", "感冒"))
    between = ms(lambda: sample_store.interactions_between(["abacavir", "naltrexone", "orlistat"]))
    nb = ms(lambda: sample_store.neighbourhood("Department", "皮肤科", depth=3, limit=200))
    log.info("kuzu sample: edges_of %.1f ms, interactions_between %.1f ms, neighbourhood(depth 3, hub) %.1f ms",
             one_hop, between, nb)
    assert max(one_hop, between) < 500 and nb < 2000


@pytest.mark.slow
@needs_data
def test_full_bulk_load_under_a_minute(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    dd = read_ddinter(sorted(DDINTER.glob("ddinter_downloads_code_*.csv")))
    ck = read_cmedkg(list(CMEDKG_RELS))
    full = dd + ck
    t1 = time.perf_counter()
    with KuzuGraphStore(tmp_path / "full.kuzu") as st:
        n_new = st.upsert_nodes(list(full.nodes.values()))
        e_new = st.upsert_edges(list(dd.edges.values()))
        e_new += st.upsert_edges(list(ck.edges.values()))
        t2 = time.perf_counter()
        assert (n_new, e_new) == (len(full.nodes), len(full.edges))
        assert st.counts()["edges"] == full.edge_counts()
        assert load(st, full) == (0, 0)
        t3 = time.perf_counter()
        _, edges, truncated = st.neighbourhood("Drug", "warfarin", depth=2, limit=200)
        assert truncated and len(edges) == 200
        t4 = time.perf_counter()
    log.info("full DDInter+CMeKG: parse %.1f s; load %d nodes + %d edges %.1f s; idempotent reload %.1f s; "
             "neighbourhood(warfarin, 2) %.0f ms", t1 - t0, len(full.nodes), len(full.edges), t2 - t1, t3 - t2,
             (t4 - t3) * 1000)
    assert t2 - t1 < 60
