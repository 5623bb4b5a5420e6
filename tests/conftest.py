"""Shared fixtures: the real shared data, the real embedding model and small real knowledge bases per session.

Layout: tests/unit (no embedding model; runs in under a minute: `make test-unit`), tests/integration (the real model
and a sample KB), tests/e2e (CLI subprocesses, the browser, the full KB). Each test gets the marker of its folder.

Both sample KBs are built by the real ingest (first 60 openFDA labels, the 5 SPL files, 60 Chinese inserts, all of
DDInter and the Chinese KG) into a temporary DRUGRAG_HOME once per test session: `kb_home` with the real
multilingual embedder, `hash_kb_home` with the deterministic HashEmbedder (unit tests: linking, routing, retrieval,
answer building and the API, without a model).
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(parts[0])


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
    from rag.core.settings import Settings

    base = dict(home=home, data_dir=DATA_DIR, embedding_model=str(MODEL_DIR), limit_labels=SAMPLE_LIMIT)
    base.update(kw)
    return Settings(**base)


def build_kb(home: Path, **kw) -> Path:
    """Run the real ingest into `home` (settings from make_settings plus `kw`)."""
    from rag.components import make_embedder, make_graph_store, make_vector_store
    from rag.ingest.pipeline import run_ingest

    s = make_settings(home, **kw)
    v, g = make_vector_store(s), make_graph_store(s)
    try:
        report = run_ingest(s, v, g, make_embedder(s), progress=False)
    finally:
        v.close()
        g.close()
    (home / "ingest_report.json").write_text(json.dumps(report.as_dict(), ensure_ascii=False))
    return home


@pytest.fixture(scope="session")
def kb_home(tmp_path_factory, data_dir, model_dir) -> Path:
    """A sample KB built once by the real ingest; tests that need their own copy use `kb_copy`."""
    return build_kb(tmp_path_factory.mktemp("kb"))


@pytest.fixture(scope="session")
def hash_kb_home(tmp_path_factory, data_dir) -> Path:
    """The same sample KB embedded by the HashEmbedder: no model needed (unit tests)."""
    return build_kb(tmp_path_factory.mktemp("hashkb"), embedding_model="hash")


@pytest.fixture
def hash_kb_copy(hash_kb_home, tmp_path) -> Path:
    dst = tmp_path / "hashkb"
    shutil.copytree(hash_kb_home, dst, ignore=shutil.ignore_patterns(".drugrag.lock"))
    return dst


@pytest.fixture(scope="session")
def hash_service(hash_kb_home):
    from rag.service import DrugService

    svc = DrugService(make_settings(hash_kb_home, embedding_model="hash"))
    yield svc
    svc.close()


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
            if set(q["expected"].get("set_ids", [])) & ids and set(q["expected"]["set_ids"]) <= ids | set(
                q["expected"]["set_ids"]
            ):
                out.append(q)
    return out
