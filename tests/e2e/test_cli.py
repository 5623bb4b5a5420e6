"""The `drugrag` console script as a user runs it (subprocesses over a copy of the sample KB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, MODEL_DIR, SAMPLE_LIMIT

CLI = [sys.executable, "-m", "rag.apps.cli"]


def run(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_DATA_DIR": str(DATA_DIR),
           "DRUGRAG_EMBEDDING_MODEL": str(MODEL_DIR), "DRUGRAG_LIMIT_LABELS": str(SAMPLE_LIMIT)}
    p = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert p.returncode == 0, p.stderr[-2000:]
    return p


@pytest.fixture(scope="module")
def home(kb_home, tmp_path_factory):
    import shutil

    dst = tmp_path_factory.mktemp("cli") / "kb"
    shutil.copytree(kb_home, dst)
    return dst


def test_ask_text_and_json(home):
    p = run(home, "ask", "What is naproxen used for?")
    assert (
        p.stdout.startswith("[answered]") and "[C1]" in p.stdout and "000155a8-709c-44e5-a75f-cd890f3a7caf" in p.stdout
    )
    p = run(home, "ask", "--json", "naproxen有哪些禁忌？")
    ans = json.loads(p.stdout)
    assert ans["language"] == "zh" and ans["citations"][0]["section"] == "contraindications"


def test_ask_errors_exit_2_with_message(home):
    p = run(home, "ask", "   ", ok=False)
    assert p.returncode == 2 and "question is empty" in p.stderr and "Traceback" not in p.stderr


def test_batch_and_eval(home, tmp_path):
    qs = [
        {
            "id": "q1",
            "question": "What is naproxen used for?",
            "lang": "en",
            "expected": {"set_ids": ["000155a8-709c-44e5-a75f-cd890f3a7caf"], "section": "indications_and_usage"},
        },
        {
            "id": "q2",
            "question": "Can I take Warfarin together with Aspirin?",
            "lang": "en",
            "expected": {"interaction": {"drugs": ["Warfarin", "Aspirin"], "level": "Major"}},
        },
        {
            "id": "q3",
            "question": "Can I take Loratadine together with Nitisinone?",
            "lang": "en",
            "expected": {"interaction": {"drugs": ["Loratadine", "Nitisinone"], "level": None}},
        },
        {"id": "q4", "question": "What is fooxaban used for?", "lang": "en", "expected": {"answerable": False}},
    ]
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(q) for q in qs))
    p = run(home, "ask", "--batch", str(f), "--json")
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4"]
    assert rows[3]["status"] == "insufficient_evidence"
    p = run(home, "eval", str(f))
    res = json.loads(p.stdout)
    assert res["label"]["recall_at_1"] == 1.0 and res["label"]["cited_section_hit"] == 1.0
    assert res["label"]["citation_span_valid"] == 1.0 and res["label"]["mrr"] == 1.0
    assert res["interaction"]["interaction_level_accuracy"] == 1.0 and res["interaction"]["n"] == 2
    assert res["unknown"]["n"] == 1 and res["unknown"]["answered_as_other_drug"] == 0.0
    assert set(res["label"]["latency_ms"]) == {"p50", "p95"}


def test_ingest_twice_via_cli_adds_nothing(home):
    p = run(home, "ingest", "--json")
    out = json.loads(p.stdout)
    assert out["added"] == {"labels": 0, "chunks": 0, "nodes": 0, "edges": 0}
    assert {"labels", "chunks", "nodes", "edges", "skipped", "seconds"} <= set(out)
    assert out["sources"]["ddinter"]["status"] == "unchanged"


def test_cli_delete(home):
    p = run(home, "ingest", "--delete", "000155a8-709c-44e5-a75f-cd890f3a7caf", "--json")
    assert json.loads(p.stdout)[0]["deleted_chunks"] > 0
    p = run(home, "ask", "--json", "What is naproxen used for?")
    assert all(c["doc_id"] != "000155a8-709c-44e5-a75f-cd890f3a7caf" for c in json.loads(p.stdout)["citations"])
