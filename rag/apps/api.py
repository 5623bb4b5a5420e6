"""FastAPI edge: routes → DrugService. DrugRagError subclasses map to HTTP statuses here and only here.

Every route has a typed response model and documents its error statuses with the one error body (`ErrorBody`);
the guard in front (rag/apps/guard.py) adds request ids, the Host check, API keys, rate limits, the body cap and
back-pressure. The OpenAI-compatible facade (rag/apps/openai_compat.py) is mounted under the same /v1 prefix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.answer.schema import Answer, Turn
from rag.apps.api_models import (
    DrugPage,
    Entity,
    Health,
    JsonSchemaDoc,
    KBStats,
    LabelPage,
    Neighbourhood,
)
from rag.apps.guard import ApiGuard, KeyRing
from rag.apps.http_errors import HTTP_ERRORS, error_body, error_responses, public_detail
from rag.apps.readiness import Readiness
from rag.apps.render import log_answer
from rag.core.errors import DrugRagError, StoreUnavailable
from rag.service import DrugService

log = logging.getLogger(__name__)

class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2000, description="a drug question in Chinese or English")
    history: list[Turn] = Field(default_factory=list, max_length=20, description="earlier turns of the conversation")


class InteractionsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drugs: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=2, max_length=10)


class Live(BaseModel):
    ok: bool = True


IdPath = Annotated[str, Path(min_length=1, max_length=200)]
Text200 = Annotated[str, Query(min_length=1, max_length=200)]


def _split(v: str | None) -> list[str] | None:
    return [t for t in v.split(",") if t] if v else None


def create_app(service: DrugService | None = None) -> FastAPI:
    holder: dict[str, DrugService] = {}
    if service is not None:
        holder["svc"] = service
    settings = service.settings if service is not None else None

    def svc() -> DrugService:
        if "svc" not in holder:
            holder["svc"] = DrugService()
        return holder["svc"]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        s = svc()
        try:
            await anyio.to_thread.run_sync(s.warm_up)  # first question fast, readiness meaningful
        except DrugRagError as e:
            log.warning("not ready at start-up (health will say why): %s", e)
        body = await anyio.to_thread.run_sync(ready.body)
        if not body["ok"]:
            log.warning("knowledge base not ready: %s", {k: v for k, v in body.items() if isinstance(v, dict)})
        yield
        if service is None:
            s.close()

    app = FastAPI(title="drugrag", version="0.1.0", lifespan=lifespan,
                  description="Drug questions answered from labels and a knowledge graph, every fact cited. "
                  "Every error has one body: {error: {type, message}, detail, request_id}. With "
                  "DRUGRAG_API_KEYS set, /v1/* needs `Authorization: Bearer KEY` or `X-API-Key`.")
    s = settings or svc().settings
    ready = Readiness(svc, s.health_cache_s)
    needs_kb = [Depends(ready.require)]  # routes that read the knowledge base answer 503 while it fails its probe

    @app.exception_handler(DrugRagError)
    async def _drugrag_error(request: Request, exc: DrugRagError) -> JSONResponse:
        level = logging.WARNING if exc.http_status >= 500 else logging.INFO
        log.log(level, "%s %s: %s", request.url.path, type(exc).__name__, exc)
        headers = {"Retry-After": "5"} if exc.http_status == 503 else None
        if isinstance(exc, StoreUnavailable):
            ready.invalidate()  # the next request probes again
        return error_body(exc.http_status, type(exc).__name__, public_detail(str(exc)), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            msgs.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return error_body(422, "InvalidInput", "; ".join(msgs)[:2000])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, HTTP_ERRORS.get(exc.status_code, "HTTPError"), str(exc.detail),
                          dict(exc.headers or {}))

    @app.post("/v1/ask", response_model=Answer, responses=error_responses(404, 413), dependencies=needs_kb)
    def ask(req: AskRequest) -> Answer:
        ans = svc().ask(req.question, req.history)
        log_answer(ans)
        return ans

    @app.post("/v1/ask/stream", responses={200: {"content": {"text/event-stream": {}},
                                                 "description": "`fact` events (each fact once it passed its "
                                                                "check, with its citations), `token` events (the "
                                                                "final prose), then `answer` (the final JSON)"},
                                           **error_responses(404, 413)}, dependencies=needs_kb)
    def ask_stream(req: AskRequest) -> StreamingResponse:
        events = svc().ask_stream(req.question, req.history)
        first = next(events)  # raise input/store errors before the stream starts, so they map to HTTP statuses

        def gen() -> Iterator[str]:
            for ev in _chain(first, events):
                if ev["event"] == "answer":
                    data = ev["data"]
                    log_answer(Answer.model_validate_json(data))
                else:
                    data = json.dumps(ev["data"], ensure_ascii=False)
                yield f"event: {ev['event']}\ndata: {data}\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/v1/interactions", response_model=Answer, responses=error_responses(404, 413), dependencies=needs_kb)
    def interactions(req: InteractionsRequest) -> Answer:
        return svc().interactions(req.drugs)

    @app.get("/v1/drugs/{drug_id:path}", response_model=DrugPage, responses=error_responses(404), dependencies=needs_kb)
    def drug(drug_id: IdPath) -> dict[str, Any]:
        return svc().drug(drug_id)

    @app.get("/v1/labels/{label_id:path}", response_model=LabelPage, responses=error_responses(404),
             dependencies=needs_kb)
    def label(label_id: IdPath) -> dict[str, Any]:
        return svc().label(label_id)

    @app.get("/v1/search", response_model=list[Entity], responses=error_responses(), dependencies=needs_kb)
    def search(q: Text200, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict[str, Any]]:
        return svc().search(q, limit=limit)

    @app.get("/v1/graph/entities", response_model=list[Entity], responses=error_responses(), dependencies=needs_kb)
    def graph_entities(
        q: Text200,
        types: Annotated[str | None, Query(max_length=200, description="comma-separated node types")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[dict[str, Any]]:
        return svc().search(q, limit=limit, types=_split(types))

    @app.get("/v1/graph/neighbourhood", response_model=Neighbourhood, responses=error_responses(404),
             dependencies=needs_kb)
    def neighbourhood(
        id: Text200,
        type: Annotated[str | None, Query(max_length=50, description="node type, e.g. Drug")] = None,
        depth: Annotated[int, Query(ge=1, le=3)] = 1,
        types: Annotated[str | None, Query(max_length=500, description="comma-separated edge types")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        return svc().neighbourhood(id, type, depth, _split(types), limit)

    @app.get("/v1/kb", response_model=KBStats, responses=error_responses(), dependencies=needs_kb)
    def kb() -> dict[str, Any]:
        return svc().kb_stats()

    @app.get("/v1/schema/answer", response_model=JsonSchemaDoc, responses=error_responses())
    def answer_schema() -> dict[str, Any]:
        return Answer.model_json_schema()

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health, "description": "not ready"},
                                                           **error_responses()})
    def healthz() -> JSONResponse:
        """Readiness: each store answers a real query (cached for DRUGRAG_HEALTH_CACHE_S)."""
        body = ready.body()
        return JSONResponse(status_code=200 if body["ok"] else 503, content=body)

    @app.get("/livez", response_model=Live)
    def livez() -> Live:
        """Liveness: the process answers (no store is touched)."""
        return Live()

    from rag.apps.openai_compat import router as openai_router

    app.include_router(openai_router(svc, needs_kb))
    if s.api_keys:
        _document_security(app)
    KeyRing(s.api_keys)  # bad keys fail at start-up, not at the first request (Starlette builds middleware lazily)
    app.add_middleware(ApiGuard, settings=s)
    if s.cors_origins:  # outermost, so preflights are answered and every response (401/429 too) gets CORS headers
        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"], max_age=600)
    return app


def _document_security(app: FastAPI) -> None:
    """Declare the API-key schemes in OpenAPI and require one of them on every /v1 operation."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = base()
        spec.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        for path, ops in spec.get("paths", {}).items():
            if path.startswith("/v1/"):
                for op in ops.values():
                    op["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest
