"""The interfaces users plug in, with the real multilingual embedder on the real sample KB: the official `openai`
client against the OpenAI-compatible facade (a Chinese question, cross-lingual to an English label), and the MCP SDK
client over stdio against `drugrag mcp`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import openai
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from rag.answer.schema import Answer
from rag.apps.api import create_app
from rag.apps.render import render_markdown
from tests.conftest import DATA_DIR
from tests.support.live_server import live_server

ROOT = Path(__file__).resolve().parents[2]
NAPROXEN_LABEL = "000155a8-709c-44e5-a75f-cd890f3a7caf"


def test_openai_client_over_the_real_model(service):
    with live_server(create_app(service)) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="no-keys-configured", max_retries=0, timeout=120)
        done = c.chat.completions.create(model="drugrag", messages=[{"role": "user", "content": "萘普生有哪些禁忌？"}])
        ans = Answer.model_validate(done.model_extra["answer"])
        assert ans.language == "zh" and ans.status == "answered"
        assert ans.citations[0].doc_id == NAPROXEN_LABEL and ans.citations[0].section == "contraindications"
        assert done.choices[0].message.content == render_markdown(ans)
        chunks = list(c.chat.completions.create(model="drugrag", stream=True, messages=[
            {"role": "user", "content": "What is the recommended dose of naproxen?"}]))
        streamed = Answer.model_validate(chunks[-1].model_extra["answer"])
        assert streamed.citations[0].section == "dosage"
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == render_markdown(streamed)
        c.close()


async def _mcp(params: StdioServerParameters) -> Answer:
    async with Client(params, read_timeout_seconds=300) as c:
        res = await c.call_tool("ask", {"question": "Who should not take naproxen?"})
        assert not res.is_error, res.content
        return Answer.model_validate(res.structured_content)


def test_mcp_stdio_over_the_real_model(kb_home, model_dir, service):
    assert service.ask("naproxen").status in ("answered", "needs_clarification")  # this process holds the KB too
    env = {**os.environ, "DRUGRAG_HOME": str(kb_home), "DRUGRAG_DATA_DIR": str(DATA_DIR),
           "DRUGRAG_EMBEDDING_MODEL": str(model_dir), "PYTHONPATH": str(ROOT)}
    ans = anyio.run(_mcp, StdioServerParameters(command=sys.executable, args=["-m", "rag.apps.cli", "mcp"],
                                                env=env, cwd=ROOT))
    assert ans.status == "answered" and ans.citations[0].doc_id == NAPROXEN_LABEL
    assert ans.citations[0].section == "contraindications"
