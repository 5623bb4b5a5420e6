"""FastAPI edge: routes → DrugService. DrugRagError subclasses map to HTTP statuses here and only here."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.answer.schema import Answer, Turn
from rag.core.errors import DrugRagError
from rag.service import DrugService

log = logging.getLogger(__name__)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2000, description="a drug question in Chinese or English")
    history: list[Turn] = Field(default_factory=list, max_length=20, description="earlier turns of the conversation")


class InteractionsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drugs: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=2, max_length=10)


def create_app(service: DrugService | None = None) -> FastAPI:
    svc_holder: dict[str, DrugService] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc_holder["svc"] = service or DrugService()
        yield
        if service is None:
            svc_holder["svc"].close()

    app = FastAPI(title="drugrag", version="0.1.0", lifespan=lifespan,
                  description="Drug questions answered from labels and a knowledge graph, every fact cited.")

    def svc() -> DrugService:
        return svc_holder.get("svc") or service or DrugService()

    @app.exception_handler(DrugRagError)
    async def _drugrag_error(request: Request, exc: DrugRagError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content={"error": type(exc).__name__, "detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            msgs.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return JSONResponse(status_code=422, content={"error": "InvalidInput", "detail": "; ".join(msgs)})

    @app.post("/v1/ask", response_model=Answer)
    def ask(req: AskRequest) -> Answer:
        return svc().ask(req.question, req.history)

    @app.post("/v1/ask/stream", responses={200: {"content": {"text/event-stream": {}}}})
    def ask_stream(req: AskRequest) -> StreamingResponse:
        s = svc()
        events = s.ask_stream(req.question, req.history)
        first = next(events)  # raise input/store errors before the stream starts, so they map to HTTP statuses

        def gen() -> Iterator[str]:
            for ev in _chain(first, events):
                data = ev["data"] if ev["event"] == "answer" else json.dumps(ev["data"], ensure_ascii=False)
                yield f"event: {ev['event']}\ndata: {data}\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/v1/interactions", response_model=Answer)
    def interactions(req: InteractionsRequest) -> Answer:
        return svc().interactions(req.drugs)

    @app.get("/v1/drugs/{drug_id:path}")
    def drug(drug_id: str) -> dict[str, Any]:
        return svc().drug(drug_id)

    @app.get("/v1/labels/{label_id:path}")
    def label(label_id: str) -> dict[str, Any]:
        return svc().label(label_id)

    @app.get("/v1/search")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200)], limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> list[dict[str, Any]]:
        return svc().search(q, limit=limit)

    @app.get("/v1/graph/entities")
    def graph_entities(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        types: Annotated[str | None, Query(description="comma-separated node types")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[dict[str, Any]]:
        return svc().search(q, limit=limit, types=[t for t in types.split(",") if t] if types else None)

    @app.get("/v1/graph/neighbourhood")
    def neighbourhood(
        id: Annotated[str, Query(min_length=1, max_length=200)],
        type: Annotated[str | None, Query(description="node type, e.g. Drug")] = None,
        depth: Annotated[int, Query(ge=1, le=3)] = 1,
        types: Annotated[str | None, Query(description="comma-separated edge types")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        return svc().neighbourhood(id, type, depth, [t for t in types.split(",") if t] if types else None, limit)

    @app.get("/v1/kb")
    def kb() -> dict[str, Any]:
        return svc().kb_stats()

    @app.get("/v1/schema/answer")
    def answer_schema() -> dict[str, Any]:
        return Answer.model_json_schema()

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        h = svc().health()
        return JSONResponse(status_code=200 if h["ok"] else 503, content=h)

    return app


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest
