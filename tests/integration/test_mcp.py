"""The MCP server driven by the official SDK's client: over stdio (`drugrag mcp` as a subprocess, next to this
process's open KB) and over streamable HTTP behind the API guard, on the real sample KB (HashEmbedder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from rag.answer.schema import Answer
from rag.apps.api_models import LabelPage
from rag.apps.mcp_server import EntityList, http_app
from rag.service import DrugService
from tests.conftest import DATA_DIR, make_settings
from tests.support.live_server import live_server

ROOT = Path(__file__).resolve().parents[2]
KEY = "mcp-http-key-0123456789abcdef"
TOOLS = {"ask", "check_interactions", "get_label_section", "search_entities"}


def stdio_params(home: Path) -> StdioServerParameters:
    env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_DATA_DIR": str(DATA_DIR),
           "DRUGRAG_EMBEDDING_MODEL": "hash", "PYTHONPATH": str(ROOT)}
    return StdioServerParameters(command=sys.executable, args=["-m", "rag.apps.cli", "mcp"], env=env, cwd=ROOT)


async def _stdio_session(home: Path) -> dict:
    out: dict = {}
    async with Client(stdio_params(home), read_timeout_seconds=120) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        out["tools"] = tools
        out["ask"] = await c.call_tool("ask", {"question": "Who should not take naproxen?"})
        out["pair"] = await c.call_tool("check_interactions", {"drugs": ["warfarin", "aspirin"]})
        label_id = Answer.model_validate(out["ask"].structured_content).citations[0].doc_id
        out["label_id"] = label_id
        out["section"] = await c.call_tool("get_label_section", {"label_id": label_id,
                                                                 "section": "contraindications"})
        out["no_section"] = await c.call_tool("get_label_section", {"label_id": label_id, "section": "nonsense"})
        out["search"] = await c.call_tool("search_entities", {"query": "naproxen", "types": ["Drug"]})
        out["unknown"] = await c.call_tool("check_interactions", {"drugs": ["warfarin", "fooxaban"]})
        out["invalid"] = await c.call_tool("ask", {"question": ""})
    return out


def test_stdio_round_trip_next_to_an_open_kb(hash_service, hash_kb_home):
    assert hash_service.ask("What is naproxen used for?").status == "answered"  # this process holds the KB
    r = anyio.run(_stdio_session, hash_kb_home)
    assert TOOLS <= set(r["tools"])
    assert "citations" in r["tools"]["ask"].output_schema["properties"]
    assert "cites its source" in (r["tools"]["ask"].description or "")

    ans = Answer.model_validate(r["ask"].structured_content)
    assert not r["ask"].is_error and ans.status == "answered" and ans.citations[0].section == "contraindications"
    assert r["ask"].content and '"citations"' in r["ask"].content[0].text  # a text copy for text-only hosts

    pair = Answer.model_validate(r["pair"].structured_content)
    assert pair.interactions[0].severity == "major" and pair.citations[0].source == "graph"

    page = LabelPage.model_validate(r["section"].structured_content)
    assert page.label_id == r["label_id"] and [s.key for s in page.sections] == ["contraindications"]
    assert ans.citations[0].quote in page.sections[0].text

    assert r["no_section"].is_error and "has no section 'nonsense'" in r["no_section"].content[0].text
    ents = EntityList.model_validate(r["search"].structured_content).entities
    assert ents[0].id == "naproxen" and ents[0].has_label
    assert r["unknown"].is_error and "fooxaban" in r["unknown"].content[0].text
    assert r["invalid"].is_error


async def _http_session(url: str) -> tuple[list[str], dict]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http, \
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as c:
        names = [t.name for t in (await c.list_tools()).tools]
        res = await c.call_tool("search_entities", {"query": "高血压", "types": ["Disease"], "limit": 3})
        return names, res.structured_content


@pytest.fixture(scope="module")
def mcp_http_url(hash_kb_home):
    s = make_settings(hash_kb_home, embedding_model="hash", api_keys=[KEY])
    svc = DrugService(s)
    with live_server(http_app(svc, s)) as url:
        yield url
    svc.close()


def test_streamable_http_behind_the_guard(mcp_http_url):
    names, found = anyio.run(_http_session, mcp_http_url)
    assert TOOLS <= set(names)
    assert EntityList.model_validate(found).entities[0].type == "Disease"
    r = httpx.post(f"{mcp_http_url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"
    bad_host = httpx.get(f"{mcp_http_url}/mcp", headers={"Host": "evil.example.com", "X-API-Key": KEY})
    assert bad_host.status_code == 400
