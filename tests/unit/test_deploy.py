"""The production stack read as an operator would, without a Docker engine: docker-compose.yml, .env.example, the
Dockerfile and the vLLM chat templates. `docker-compose config` runs too where the client is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from rag.answer.prompts import FORMATS, build_messages, render
from rag.core.settings import Settings
from rag.core.types import Evidence, Source, Turn

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict = COMPOSE["services"]
RAW = (ROOT / "docker-compose.yml").read_text()
ONE_SHOT = {"setup", "ingest"}


def env(name: str) -> dict[str, str]:
    e = SERVICES[name].get("environment") or {}
    return {str(k): str(v) for k, v in (e.items() if isinstance(e, dict) else (x.split("=", 1) for x in e))}


def test_every_drugrag_variable_is_a_real_setting():
    fields = {f"DRUGRAG_{n.upper()}" for n in Settings.model_fields}
    used = {k for s in SERVICES for k in env(s) if k.startswith("DRUGRAG_")}
    assert used, "the stack configures drugrag through DRUGRAG_* variables"
    assert used - fields == set(), f"not settings: {sorted(used - fields)}"


def test_every_service_has_a_working_healthcheck_and_start_period():
    for name, svc in SERVICES.items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), name
        assert {"interval", "timeout", "retries", "start_period"} <= set(hc), name
        test = hc["test"] if isinstance(hc["test"], str) else " ".join(hc["test"])
        # every variable the probe reads (after compose's $$ escape) is set in that container
        for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", test.replace("$$", "$")):
            assert var in env(name), f"{name}: healthcheck reads ${var}, which is not set in its environment"


def test_neo4j_probe_logs_in_with_the_configured_password():
    hc = " ".join(SERVICES["neo4j"]["healthcheck"]["test"])
    assert "cypher-shell" in hc and "NEO4J_AUTH" in hc and "NEO4J_PASSWORD" not in hc.split("-p", 1)[1]
    assert env("neo4j")["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD:?")


def test_order_setup_then_ingest_then_api_then_ui():
    dep = {n: s.get("depends_on", {}) for n, s in SERVICES.items()}
    assert dep["ingest"]["setup"]["condition"] == "service_completed_successfully"
    assert dep["api"]["ingest"]["condition"] == "service_completed_successfully"
    assert dep["ingest"]["qdrant"]["condition"] == dep["ingest"]["neo4j"]["condition"] == "service_healthy"
    assert dep["ui"]["api"]["condition"] == "service_healthy"
    for n in ONE_SHOT:
        assert SERVICES[n]["restart"] == "no"


def test_one_embedding_model_path_inside_the_shared_volume():
    paths = {n: env(n).get("DRUGRAG_EMBEDDING_MODEL") for n in ("setup", "ingest", "api", "ui")}
    assert len(set(paths.values())) == 1 and None not in paths.values(), paths
    model = next(iter(paths.values()))
    for n in paths:
        mounts = [v.split(":")[1] for v in SERVICES[n]["volumes"] if v.startswith("drugrag_home:")]
        assert mounts and model.startswith(mounts[0] + "/"), n
    assert SERVICES["setup"]["command"] == ["drugrag", "setup"]
    assert env("setup")["DRUGRAG_EMBEDDING_BUILD_TOOL"].startswith("/opt/drugrag-tools/")


def test_secrets_are_required_never_blank_defaults():
    assert "QDRANT_API_KEY:-" not in RAW and "${QDRANT_API_KEY:?" in env("qdrant")["QDRANT__SERVICE__API_KEY"]
    assert env("api")["DRUGRAG_QDRANT_API_KEY"].startswith("${QDRANT_API_KEY:?")
    assert env("api")["DRUGRAG_API_KEYS"].startswith("${DRUGRAG_API_KEYS:?")
    assert env("ui")["DRUGRAG_CLIENT_API_KEY"].startswith("${DRUGRAG_UI_API_KEY:?")
    assert "api" in env("api")["DRUGRAG_TRUSTED_HOSTS"]  # the UI reaches the API as http://api:8000
    for n, s in SERVICES.items():  # nothing is published beyond loopback
        assert all(str(p).startswith("127.0.0.1:") for p in s.get("ports", [])), n


def test_vllm_is_current_and_locked_down():
    m = SERVICES["model"]
    assert re.fullmatch(r"vllm/vllm-openai:v0\.(\d+)\.\d+", m["image"]) and int(m["image"].split(".")[1]) >= 30
    cmd = " ".join(m["command"])
    assert m["ipc"] == "host" and '--api-key "$$VLLM_API_KEY"' in cmd
    assert "--structured-outputs-config.backend guidance" in cmd and "--guided-decoding-backend" not in cmd
    assert "--chat-template" in cmd and "VLLM_CHAT_TEMPLATE:+" in cmd  # optional, only when set
    assert env("model")["VLLM_API_KEY"].startswith("${VLLM_API_KEY:?")
    assert env("api")["DRUGRAG_GENERATOR_API_KEY"] == env("model")["VLLM_API_KEY"]
    assert any(v.endswith(":/models:ro") and "MODEL_DIR" in v for v in m["volumes"])


def test_env_example_names_every_required_variable():
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", RAW))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert required <= listed, required - listed
    assert all(re.search(rf"^{v}=$", example, re.M) for v in required - {"MODEL_DIR"})  # secrets start blank


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose client not installed "
                    "(apt-get install -y docker-compose)")
def test_docker_compose_config_accepts_the_file(tmp_path):
    example = (ROOT / ".env.example").read_text()
    filled = re.sub(r"^([A-Z0-9_]+)=$", r"\1=test-value-0123456789abcdef", example, flags=re.M)
    (tmp_path / ".env").write_text(filled)
    p = subprocess.run(["docker-compose", "--env-file", str(tmp_path / ".env"), "-f", str(ROOT / "docker-compose.yml"),
                        "config", "-q"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    blank = subprocess.run(["docker-compose", "--env-file", str(ROOT / ".env.example"), "-f",
                            str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True,
                           timeout=60)
    assert blank.returncode != 0 and "in .env" in blank.stderr  # blank secrets stop compose with a message


def test_image_runs_unprivileged_with_the_mcp_sdk():
    df = (ROOT / "Dockerfile").read_text()
    assert "USER drugrag" in df and "torch==2.13.0" in df
    assert '"mcp>=' in (ROOT / "pyproject.toml").read_text()


def _evidence() -> Evidence:
    text = "Naproxen is contraindicated in patients with known hypersensitivity to naproxen."
    src = Source(sid="S1", kind="label", doc_id="lab-1", title="Naproxen", section="contraindications",
                 section_name="CONTRAINDICATIONS", version=None, text=text, offset=0, section_text=text)
    return Evidence(question="Who should not take naproxen?", language="en", intent="contraindications",
                    sections=["contraindications"], sources=[src])


HISTORIES = [
    [],
    [Turn(role="user", content="萘普生是什么药？"), Turn(role="assistant", content="一种非甾体抗炎药。")],
    [Turn(role="user", content="first"), Turn(role="user", content="second"), Turn(role="assistant", content="a")],
]


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"chat_template"}))
@pytest.mark.parametrize("history", range(len(HISTORIES)))
def test_vllm_chat_templates_render_like_the_in_process_formats(fmt, history):
    """vLLM applies deploy/chat-templates/<fmt>.jinja to the messages the OpenAI generator sends; the prompt must
    be the one the in-process backend renders for the same format (BOS is the server tokenizer's)."""
    ev = _evidence()
    messages = build_messages(ev.question, ev, HISTORIES[history], ev.language)
    template = jinja2.Environment(keep_trailing_newline=True).from_string(
        (ROOT / "deploy" / "chat-templates" / f"{fmt}.jinja").read_text())
    assert template.render(messages=messages, bos_token="", add_generation_prompt=True) == render(fmt, messages)
