"""Operator-facing pieces: `drugrag setup` into the directory DRUGRAG_EMBEDDING_MODEL names (compose's setup
service), the request id forwarded to the model server, and the log line formats."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from typer.testing import CliRunner

from rag.apps.cli import app
from rag.core.obs import JsonFormatter, RequestIdFilter, TextFormatter, request_id
from rag.core.settings import get_settings
from rag.core.types import Evidence, Source
from rag.generation.openai_compatible import OpenAIGenerator

BUILDER = """import json, pathlib, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / "modules.json").write_text("[]"); print("built", out)
"""


@pytest.fixture
def env(monkeypatch, tmp_path):
    def set_env(**kw: str) -> None:
        for k, v in kw.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()

    monkeypatch.setenv("DRUGRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRUGRAG_MACHINE_CACHE", str(tmp_path / "machine"))
    yield set_env
    get_settings.cache_clear()


def test_setup_builds_into_the_path_the_setting_names(env, tmp_path):
    """The compose setup service sets DRUGRAG_EMBEDDING_MODEL to a directory in the shared volume: build there."""
    tool = tmp_path / "builder.py"  # stands in for ../shared/tools/build_multilingual_e5.py (same argv contract)
    tool.write_text(BUILDER)
    target = tmp_path / "volume" / "models" / "multilingual-e5-small"
    env(DRUGRAG_EMBEDDING_MODEL=str(target), DRUGRAG_EMBEDDING_BUILD_TOOL=str(tool))
    r = CliRunner().invoke(app, ["setup"])
    assert r.exit_code == 0, r.output
    assert (target / "modules.json").exists() and str(target) in r.output
    again = CliRunner().invoke(app, ["setup"])
    assert again.exit_code == 0 and "already at" in again.output


def test_setup_chooses_the_embedding_backend_once_so_ingest_does_not(env, tmp_path, monkeypatch):
    """`drugrag setup` measures the backends (ONNX export, int8, timing) and caches the choice for the machine; a
    second setup and the ingest's embedder find it cached. The measurement itself is a seam here (tested in
    test_embedding_choice and, with the real model, in the integration tests)."""
    import numpy as np

    from rag.components import make_embedder
    from rag.retrieval import calibration as cal

    class Runner:
        kind, dim = "onnx-int8", 4

        def encode(self, texts, progress=False, max_length=None):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    calls: list[str] = []

    def fake_calibrate(model, max_length, home, *a, **kw):
        calls.append(str(home))
        return "onnx-int8", {"choice": "onnx-int8", "seconds": 1.5, "measured": {}}, Runner()

    monkeypatch.setattr(cal, "calibrate", fake_calibrate)
    monkeypatch.setattr(cal, "make_runner", lambda *a, **kw: Runner(), raising=False)
    monkeypatch.setattr("rag.retrieval.embedding.make_runner", lambda *a, **kw: Runner())
    tool = tmp_path / "builder.py"
    tool.write_text(BUILDER)
    target = tmp_path / "models" / "e5"
    env(DRUGRAG_EMBEDDING_MODEL=str(target), DRUGRAG_EMBEDDING_BUILD_TOOL=str(tool), DRUGRAG_EMBEDDING_BACKEND="auto")
    r = CliRunner().invoke(app, ["setup"])
    assert r.exit_code == 0 and "embedding backend: onnx-int8 (measured in 1.5 s)" in r.output, r.output
    assert calls == [str(tmp_path / "machine")]
    assert (tmp_path / "machine" / "cache" / "embedding_backend.json").exists()
    again = CliRunner().invoke(app, ["setup"])
    assert "embedding backend: onnx-int8 (cached for this machine)" in again.output and len(calls) == 1
    emb = make_embedder(get_settings())  # what ingest builds: served from the cache, nothing measured
    assert emb.backend == "onnx-int8" and emb.calibration["cached"] and len(calls) == 1  # type: ignore[attr-defined]


def test_setup_leaves_model_ids_and_the_test_embedder_alone(env, tmp_path):
    for value in ("intfloat/multilingual-e5-small", "hash"):
        env(DRUGRAG_EMBEDDING_MODEL=value)
        r = CliRunner().invoke(app, ["setup"])
        assert r.exit_code == 0 and "nothing to build" in r.output


def test_setup_without_a_builder_says_what_to_do(env, tmp_path):
    env(DRUGRAG_EMBEDDING_MODEL=str(tmp_path / "m"), DRUGRAG_EMBEDDING_BUILD_TOOL=str(tmp_path / "missing.py"))
    r = CliRunner().invoke(app, ["setup"])
    assert r.exit_code == 2 and "DRUGRAG_EMBEDDING_BUILD_TOOL" in r.output


def _evidence() -> Evidence:
    text = "Take 250 mg twice daily."
    src = Source(sid="S1", kind="label", doc_id="l1", title="Naproxen", section="dosage", section_name="DOSAGE",
                 version=None, text=text, offset=0, section_text=text)
    return Evidence(question="dose of naproxen?", language="en", intent="dosage", sections=["dosage"],
                    sources=[src])


def test_the_request_id_travels_to_the_model_server():
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if json.loads(req.content).get("stream"):
            return httpx.Response(200, text='data: {"choices": [{"delta": {"content": "{}"}}]}\n\ndata: [DONE]\n\n',
                                  headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]})

    gen = OpenAIGenerator("http://vllm:8000/v1", "chat", client=httpx.Client(transport=httpx.MockTransport(handler)))
    ev = _evidence()
    gen.generate(ev.question, ev)
    token = request_id.set("req-abc")
    try:
        gen.generate(ev.question, ev)
        list(gen.stream(ev.question, ev))
    finally:
        request_id.reset(token)
    assert "x-request-id" not in seen[0].headers
    assert seen[1].headers["x-request-id"] == seen[2].headers["x-request-id"] == "req-abc"


def test_log_formats_carry_the_request_id_and_fields():
    rec = logging.LogRecord("drugrag.access", logging.INFO, __file__, 1, "request", None, None)
    rec.fields = {"path": "/v1/ask", "status": 200}
    token = request_id.set("rid-1")
    try:
        RequestIdFilter().filter(rec)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(rec))
    assert line["request_id"] == "rid-1" and line["path"] == "/v1/ask" and line["status"] == 200
    assert line["msg"] == "request" and line["level"] == "INFO" and line["ts"].endswith("Z")
    text = TextFormatter().format(rec)
    assert "[rid-1] request path=/v1/ask status=200" in text

