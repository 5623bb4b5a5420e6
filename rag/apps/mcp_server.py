"""MCP server (official `mcp` SDK): the assistant as tools an agent can call — `drugrag mcp`.

Tools: `ask`, `check_interactions`, `get_label_section`, `search_entities`. Each calls DrugService and returns the
structured result (the Answer schema, a label page, entities) as MCP structured content, with a JSON text copy for
clients that read only text. Expected failures (unknown drug, bad input, store down) come back as tool errors with a
readable message; "no interaction recorded" stays what it is — never "safe".

Transports: stdio (`drugrag mcp`, for a local agent) and streamable HTTP (`drugrag mcp --transport http`, at /mcp),
the HTTP app behind the same guard as the API (Host check, API keys, rate limit, body cap, back-pressure).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rag.answer.schema import Answer, Turn
from rag.apps.api_models import Entity, LabelPage
from rag.apps.http_errors import public_detail
from rag.apps.render import log_answer
from rag.core.errors import DrugRagError
from rag.core.settings import Settings
from rag.service import DrugService

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Drug information from drug labels and a medical knowledge graph (Chinese and English). Every fact cites label "
    "text or a graph edge: show the citations to the user. An answer is not medical advice and never a "
    "prescription; 'no interaction recorded' does not mean a combination is safe."
)


class EntityList(BaseModel):
    entities: list[Entity]


def build_server(service: DrugService) -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    mcp = MCPServer("drugrag", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING")

    def call(fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except DrugRagError as e:
            raise ToolError(f"{type(e).__name__}: {public_detail(str(e))}") from e

    @mcp.tool(title="Ask a drug question")
    def ask(
        question: Annotated[str, Field(min_length=1, max_length=2000,
                                       description="a drug question in Chinese or English")],
        history: Annotated[list[Turn] | None, Field(max_length=20, description="earlier turns, oldest first")] = None,
    ) -> Answer:
        """Answer a question about a medicine (use, dose, contraindications, side effects, interactions) from drug
        labels and the knowledge graph; every fact cites its source."""
        ans: Answer = call(service.ask, question, history or [])
        log_answer(ans)
        return ans

    @mcp.tool(title="Check drug interactions")
    def check_interactions(
        drugs: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                         Field(min_length=2, max_length=10, description="two to ten drug names")],
    ) -> Answer:
        """Pairwise interactions recorded in the knowledge graph (DDInter) and label text, with citations. A pair
        without a record is reported as 'no record', which is not a statement that it is safe."""
        ans: Answer = call(service.interactions, drugs)
        return ans

    @mcp.tool(title="Read a label section")
    def get_label_section(
        label_id: Annotated[str, Field(min_length=1, max_length=200, description="a label id from a citation")],
        section: Annotated[str | None, Field(max_length=100, description="canonical section key, e.g. dosage, "
                                             "contraindications; omit for the whole label")] = None,
    ) -> LabelPage:
        """The stored text of a label (one section, or all), to read a cited passage in full."""
        page = LabelPage.model_validate(call(service.label, label_id))
        if section:
            keep = [s for s in page.sections if s.key == section or s.name == section]
            if not keep:
                have = ", ".join(dict.fromkeys(s.key for s in page.sections))
                raise ToolError(f"NotFound: label {label_id} has no section {section!r}; it has: {have}")
            page.sections = keep
        return page

    @mcp.tool(title="Search drugs, diseases and other entities")
    def search_entities(
        query: Annotated[str, Field(min_length=1, max_length=200, description="a name or part of one")],
        types: Annotated[list[str] | None, Field(max_length=9, description="node types, e.g. Drug, Disease")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> EntityList:
        """Knowledge-graph entities whose name contains the query (exact matches first)."""
        found = call(service.search, query, limit=limit, types=types or None)
        return EntityList(entities=[Entity.model_validate(x) for x in found])

    return mcp


def serve_stdio(service: DrugService) -> None:
    build_server(service).run("stdio")


def http_app(service: DrugService, settings: Settings) -> Any:
    """The streamable-HTTP MCP app at /mcp, behind the API's guard."""
    from mcp.server.transport_security import TransportSecuritySettings

    from rag.apps.guard import ApiGuard

    # the guard checks Host (trusted_hosts, IPv6 literals too) and keys; the SDK's own Host/Origin check would only
    # repeat the Host part with a simpler parser, so it is off (a browser's cross-origin JSON POST needs CORS anyway)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = build_server(service).streamable_http_app(streamable_http_path="/mcp", transport_security=security,
                                                    stateless_http=True, json_response=True,
                                                    max_request_body_size=settings.max_body_bytes)
    return ApiGuard(app, settings)


def serve_http(service: DrugService, settings: Settings, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(http_app(service, settings), host=host, port=port, log_level="warning", access_log=False)


