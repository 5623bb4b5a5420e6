"""Shared fixtures: the real shared data, the real embedding model and one small real knowledge base per session.

The sample KB is built by the real ingest (first 60 openFDA labels, the 5 SPL files, 40 Chinese inserts, all of
DDInter and the Chinese KG) into a temporary DRUGRAG_HOME once per test session.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("DRUGRAG_DATA_DIR", ROOT.parent / "shared" / "data"))
MODEL_DIR = Path(os.environ.get("DRUGRAG_EMBEDDING_MODEL", ROOT / ".drugrag" / "models" / "multilingual-e5-small"))
SAMPLE_LIMIT = 60


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path} (run `make setup`; data lives in ../shared/data)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(DATA_DIR, "shared data")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return _require(MODEL_DIR, "embedding model")


def make_settings(home: Path, **kw):
    from rag.settings import Settings

    base = dict(home=home, data_dir=DATA_DIR, embedding_model=str(MODEL_DIR), limit_labels=SAMPLE_LIMIT)
    base.update(kw)
    return Settings(**base)


@pytest.fixture(scope="session")
def kb_home(tmp_path_factory, data_dir, model_dir) -> Path:
    """A sample KB built once by the real ingest; tests that need their own copy use `kb_copy`."""
    from rag.components import make_embedder, make_graph_store, make_vector_store
    from rag.ingest import run_ingest

    home = tmp_path_factory.mktemp("kb")
    s = make_settings(home)
    v, g = make_vector_store(s), make_graph_store(s)
    try:
        report = run_ingest(s, v, g, make_embedder(s), progress=False)
    finally:
        v.close()
        g.close()
    (home / "ingest_report.json").write_text(json.dumps(report.as_dict(), ensure_ascii=False))
    return home


@pytest.fixture
def kb_copy(kb_home, tmp_path) -> Path:
    dst = tmp_path / "kb"
    shutil.copytree(kb_home, dst, ignore=shutil.ignore_patterns(".drugrag.lock"))
    return dst


@pytest.fixture(scope="session")
def service(kb_home):
    from rag.service import DrugService

    svc = DrugService(make_settings(kb_home))
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def sample_label_ids(data_dir) -> list[str]:
    from kb_loaders.openfda import load_openfda

    return [lab.id for lab in load_openfda(data_dir / "openfda", limit=SAMPLE_LIMIT).labels]


@pytest.fixture(scope="session")
def sample_questions(data_dir, sample_label_ids) -> list[dict]:
    """Dev questions whose gold labels are in the sample KB."""
    ids = set(sample_label_ids)
    out = []
    with (data_dir / "eval" / "label_qa_dev.jsonl").open() as f:
        for line in f:
            q = json.loads(line)
            if set(q["expected"].get("set_ids", [])) & ids and set(q["expected"]["set_ids"]) <= ids | set(q["expected"]["set_ids"]):
                out.append(q)
    return out
