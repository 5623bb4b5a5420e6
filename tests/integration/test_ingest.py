"""Ingestion on real records: idempotent re-ingest, version replace, delete, malformed files, interrupted runs."""

from __future__ import annotations

import json
import zipfile

import pytest

from rag.components import make_embedder, make_graph_store, make_vector_store
from rag.ingest.pipeline import delete_label, run_ingest
from rag.stores.base import SearchFilter
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def embedder(model_dir, tmp_path_factory):
    return make_embedder(make_settings(tmp_path_factory.mktemp("emb")))


@pytest.fixture(scope="module")
def records(data_dir):
    with zipfile.ZipFile(data_dir / "openfda" / "drug-label-0001-of-0001.json.zip") as z:
        return json.loads(z.read(z.namelist()[0]))["results"][:4]


def labels_only(home, src_dir):
    """Settings that read only the given openFDA folder (no SPL, inserts or graph sources): fast."""
    return make_settings(home, openfda_paths=[str(src_dir)], spl_paths=[], cn_insert_paths=[], ddinter_paths=[],
                         cmedkg_path="", limit_labels=None)


def ingest(s, embedder):
    v, g = make_vector_store(s), make_graph_store(s)
    try:
        return run_ingest(s, v, g, embedder, progress=False)
    finally:
        v.close()
        g.close()


def write_jsonl(path, recs):
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")


def test_reingest_adds_nothing_and_version_change_replaces(tmp_path, embedder, records):
    src = tmp_path / "src"
    src.mkdir()
    write_jsonl(src / "labels.jsonl", records)
    s = labels_only(tmp_path / "home", src)
    first = ingest(s, embedder)
    assert first.labels == 4 and first.added["labels"] == 4 and first.chunks > 4
    second = ingest(s, embedder)
    assert (second.labels, second.chunks, second.nodes, second.edges) == (
        first.labels,
        first.chunks,
        first.nodes,
        first.edges,
    )
    assert second.added == {"labels": 0, "chunks": 0, "nodes": 0, "edges": 0}
    assert second.unchanged_labels == 4

    changed = json.loads(json.dumps(records))
    changed[0]["version"] = "7"
    changed[0]["indications_and_usage"] = ["NEW TEXT: indicated for testing version replacement only."]
    write_jsonl(src / "labels.jsonl", changed)
    third = ingest(s, embedder)
    assert third.labels == 4 and third.replaced_labels == 1 and third.unchanged_labels == 3
    v = make_vector_store(s)
    try:
        chunks = list(v.scroll(SearchFilter(label_ids=[records[0]["set_id"]], sections=["indications"])))
        assert [c["text"] for c in chunks] == ["NEW TEXT: indicated for testing version replacement only."]
        assert all(c["version"] == "7" for c in v.scroll(SearchFilter(label_ids=[records[0]["set_id"]])))
    finally:
        v.close()


def test_delete_removes_label_from_both_stores(tmp_path, embedder, records):
    src = tmp_path / "src"
    src.mkdir()
    write_jsonl(src / "labels.jsonl", records[:2])
    s = labels_only(tmp_path / "home", src)
    ingest(s, embedder)
    v, g = make_vector_store(s), make_graph_store(s)
    try:
        lid = records[0]["set_id"]
        res = delete_label(lid, v, g)
        assert res["deleted_chunks"] > 0 and res["deleted_label_node"] is True
        assert v.count(SearchFilter(label_ids=[lid])) == 0
        assert lid not in g.label_hashes() and lid not in v.label_hashes()
        assert records[1]["set_id"] in g.label_hashes()
        assert delete_label(lid, v, g) == {"label_id": lid, "deleted_chunks": 0, "deleted_label_node": False}
    finally:
        v.close()
        g.close()


def test_malformed_file_is_reported_and_loses_nothing(tmp_path, embedder, records):
    src = tmp_path / "src"
    src.mkdir()
    write_jsonl(src / "good.jsonl", records[:2])
    (src / "broken.json").write_text('{"results": [ {"set_id": ')
    bad = dict(records[2])
    bad["indications_and_usage"] = "not a list"
    write_jsonl(src / "mixed.jsonl", [bad, records[3]])
    report = ingest(labels_only(tmp_path / "home", src), embedder)
    assert report.labels == 3
    files = {k["file"] for k in report.skipped}
    assert any("broken.json" in f for f in files) and any("mixed.jsonl" in f for f in files)
    assert all(k["reason"] for k in report.skipped)


def test_interrupted_run_ends_with_clean_counts(tmp_path, embedder, data_dir, monkeypatch):
    s = make_settings(
        tmp_path / "home", spl_paths=[], cn_insert_paths=[], ddinter_paths=[], cmedkg_path="", limit_labels=70
    )  # > one batch of 64 labels
    from graph.embedded import KuzuGraphStore

    calls = {"n": 0}
    real = KuzuGraphStore.upsert_labels

    def flaky(self, items):
        calls["n"] += 1
        if calls["n"] == 2:
            # Ctrl-C after the second batch's chunks reached the vector store but before its Label nodes did:
            # the two stores now disagree, which the next run must repair
            raise KeyboardInterrupt
        return real(self, items)

    monkeypatch.setattr(KuzuGraphStore, "upsert_labels", flaky)
    with pytest.raises(KeyboardInterrupt):
        ingest(s, embedder)
    monkeypatch.setattr(KuzuGraphStore, "upsert_labels", real)
    resumed = ingest(s, embedder)
    clean = ingest(
        make_settings(
            tmp_path / "clean", spl_paths=[], cn_insert_paths=[], ddinter_paths=[], cmedkg_path="", limit_labels=70
        ),
        embedder,
    )
    assert (resumed.labels, resumed.chunks, resumed.nodes, resumed.edges) == (
        clean.labels,
        clean.chunks,
        clean.nodes,
        clean.edges,
    )
    assert resumed.unchanged_labels == 64  # the first batch was complete and is not redone


def test_sample_kb_report(kb_home):
    report = json.loads((kb_home / "ingest_report.json").read_text())
    assert report["labels"] == 60 + 5 + 60  # openFDA + SPL + Chinese inserts
    assert report["graph_counts"]["edges"]["INTERACTS_WITH"] == 155_370
    assert report["graph_counts"]["nodes"]["Disease"] == 8_806
    assert report["graph_counts"]["edges"]["HAS_LABEL"] >= report["labels"]
    assert set(report["seconds"]) >= {"load", "graph", "embed", "vector_write", "total"}
