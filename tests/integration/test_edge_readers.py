"""Readers of the embedded vector store side by side (private copies), writers excluded, damaged segments → 503.

All on a copy of the real sample KB (HashEmbedder); a damaged segment is made the way it happens on disk: a segment's
`chunk_0.mmap` truncated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.core.errors import StoreUnavailable
from rag.retrieval.embedding import HashEmbedder
from rag.service import DrugService
from rag.stores import edge_snapshot
from rag.stores.edge import EdgeVectorStore
from tests.conftest import DATA_DIR, make_settings

ROOT = Path(__file__).resolve().parents[2]


def truncate_vectors(edge_dir: Path, size: int = 0) -> Path:
    """Damage the store as a crash or a full disk would: cut a segment's dense vector file."""
    found = sorted(edge_dir.glob("segments/*/vector_storage-dense/vectors/chunk_0.mmap"))
    assert found, "no dense vector chunk in the store"
    os.truncate(found[0], size)
    return found[0]


def _vec(text: str = "naproxen contraindications") -> list[float]:
    return [float(x) for x in HashEmbedder().embed_queries([text])[0]]


def test_two_readers_share_a_store_and_clean_up(hash_kb_copy: Path) -> None:
    path = hash_kb_copy / "qdrant-edge"
    a = EdgeVectorStore(path, read_only=True)
    b = EdgeVectorStore(path, read_only=True)
    try:
        assert a.count() == b.count() > 1000
        assert a.search_dense(_vec(), 3)[0].id == b.search_dense(_vec(), 3)[0].id
        a.probe(_vec())
        copies = [a._copy, b._copy]
        assert all(c is not None and c.exists() and c != path for c in copies)
    finally:
        a.close()
        b.close()
    assert not any(c.exists() for c in copies if c is not None)


def test_reader_refuses_writes_and_fails_clearly_while_a_writer_holds(hash_kb_copy: Path) -> None:
    path = hash_kb_copy / "qdrant-edge"
    with EdgeVectorStore(path, read_only=True) as r:
        with pytest.raises(StoreUnavailable, match="read-only"):
            r.delete_label("000155a8-709c-44e5-a75f-cd890f3a7caf")
        with pytest.raises(StoreUnavailable, match="read-only"):
            r.ensure_collection(384)
    writer = EdgeVectorStore(path)
    try:
        with pytest.raises(StoreUnavailable, match="in use"):
            EdgeVectorStore(path, read_only=True)
    finally:
        writer.close()
    with pytest.raises(StoreUnavailable, match="drugrag ingest"):
        EdgeVectorStore(hash_kb_copy / "no-such-store", read_only=True)


def test_copy_keeps_the_wal_sparse(hash_kb_copy: Path) -> None:
    path = hash_kb_copy / "qdrant-edge"
    with EdgeVectorStore(path, read_only=True) as r:
        assert r._copy is not None
        for src in (path / "wal").iterdir():
            dst = r._copy / "wal" / src.name
            assert dst.stat().st_size == src.stat().st_size
            assert dst.stat().st_blocks <= src.stat().st_blocks + 8  # holes stay holes
            assert dst.read_bytes() == src.read_bytes()


def test_stale_copies_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{edge_snapshot.PREFIX}{dead.stdout.strip()}-x"
    mine = tmp_path / f"{edge_snapshot.PREFIX}{os.getpid()}-y"
    stale.mkdir()
    mine.mkdir()
    assert edge_snapshot.sweep_stale(tmp_path) == 1
    assert not stale.exists() and mine.exists()


def test_cli_ask_runs_next_to_a_serving_process(hash_kb_copy: Path) -> None:
    """`drugrag ask` while a service (as `serve` or the UI hold it) has both stores open: both answer."""
    svc = DrugService(make_settings(hash_kb_copy, embedding_model="hash"))
    try:
        assert svc.ask("Who should not take naproxen?").status == "answered"
        env = {**os.environ, "DRUGRAG_HOME": str(hash_kb_copy), "DRUGRAG_DATA_DIR": str(DATA_DIR),
               "DRUGRAG_EMBEDDING_MODEL": "hash"}
        p = subprocess.run([sys.executable, "-m", "rag.apps.cli", "ask", "--json", "Who should not take naproxen?"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        assert json.loads(p.stdout)["citations"][0]["section"] == "contraindications"
        assert svc.ask("What is naproxen used for?").status == "answered"  # still serving
    finally:
        svc.close()


def test_damaged_segment_is_store_unavailable_in_queries_and_probe(hash_kb_copy: Path) -> None:
    truncate_vectors(hash_kb_copy / "qdrant-edge")
    with EdgeVectorStore(hash_kb_copy / "qdrant-edge", read_only=True) as r:
        assert r.count() > 0  # it loads and counts: only a query reads the vectors
        with pytest.raises(StoreUnavailable, match="failed to search.*not readable"):
            r.search_dense(_vec(), 5)
        with pytest.raises(StoreUnavailable, match="not readable"):
            r.probe(_vec())
    svc = DrugService(make_settings(hash_kb_copy, embedding_model="hash"))
    try:
        h = svc.health()
        assert h["ok"] is False and h["vector_store"]["ok"] is False and h["graph_store"]["ok"] is True
        with pytest.raises(StoreUnavailable):
            svc.ask("What is naproxen used for?")
    finally:
        svc.close()
