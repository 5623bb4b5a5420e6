"""OpenAI-compatible facade: `POST /v1/chat/completions` (streaming and not) and `GET /v1/models`.

For clients people already have (Open WebUI, any OpenAI SDK). The conversation arrives as `messages`; the last user
message is the question and earlier user/assistant turns are its history (system messages are ignored: answers come
only from the knowledge base, under its own rules). The reply's content is the answer as Markdown with numbered
citations (rag/apps/render.py); the full answer JSON rides in the extension field `answer` of the completion (of
the last chunk when streaming). Sampling parameters (temperature, max_tokens, ...) are accepted and ignored.
Everything goes through DrugService.ask / ask_stream: no retrieval here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.answer.schema import Answer, Turn
from rag.apps.api_models import ErrorBody
from rag.apps.http_errors import error_responses, public_detail
from rag.apps.render import log_answer, render_markdown, render_tail
from rag.core.errors import DrugRagError, InvalidInput, NotFound
from rag.core.obs import current_request_id
from rag.service import DrugService

MODEL_ID = "drugrag"
TURN_CHARS = next((int(m.max_length) for m in Turn.model_fields["content"].metadata if hasattr(m, "max_length")),
                  4000)  # earlier turns are cut to what the answer schema's Turn accepts
HISTORY_TURNS = 10


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: Annotated[str, Field(max_length=20000)]


class OtherPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Annotated[str, Field(max_length=50)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | Annotated[list[TextPart | OtherPart], Field(max_length=50)] | None = Field(
        default=None, max_length=20000)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: Annotated[str, Field(min_length=1, max_length=200)] = MODEL_ID
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=100)]
    stream: bool = False
    n: Annotated[int, Field(ge=1, le=1)] = 1


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    answer: Answer = Field(description="extension: the full structured answer the content was rendered from")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "drugrag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def _text(m: ChatMessage) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    parts = []
    for p in m.content:
        if not isinstance(p, TextPart):
            raise InvalidInput(f"only text content is supported, not {p.type!r} parts")
        parts.append(p.text)
    return "\n".join(parts)


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """(question, history) from OpenAI messages: the last user message, and the user/assistant turns before it."""
    turns = [(m.role, _text(m)) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise InvalidInput("the last user/assistant message must be the user's question")
    question = turns[-1][1]
    history = [Turn(role=r, content=t[:TURN_CHARS]) for r, t in turns[:-1] if t.strip()]
    return question, history[-HISTORY_TURNS:]


def _check_model(name: str) -> None:
    if name != MODEL_ID:
        raise NotFound(f"model {name!r} is not served here; use {MODEL_ID!r} (GET /v1/models)")


def _chunk(cid: str, created: int, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def stream_completion(events: Iterator[dict[str, Any]], first: dict[str, Any], cid: str, created: int
                      ) -> Iterator[str]:
    """SSE chunks: the answer prose as it comes, then the rest of the rendering, then `answer` and [DONE]."""
    yield _chunk(cid, created, {"role": "assistant", "content": ""})
    streamed: list[str] = []
    try:
        for ev in _chain(first, events):
            if ev["event"] == "token":
                streamed.append(str(ev["data"]))
                yield _chunk(cid, created, {"content": str(ev["data"])})
            elif ev["event"] == "answer":
                ans = Answer.model_validate_json(ev["data"])
                log_answer(ans)
                tail = render_tail(ans)
                if "".join(streamed).strip() != ans.answer.strip():  # the verified answer replaced the draft
                    tail = f"{ans.answer}\n\n{tail}"
                yield _chunk(cid, created, {"content": f"\n\n{tail}"})
                yield _chunk(cid, created, {}, "stop", answer=json.loads(ev["data"]))
    except DrugRagError as e:
        err = ErrorBody.of(type(e).__name__, public_detail(str(e)), current_request_id())
        yield f"data: {err.model_dump_json()}\n\n"
    yield "data: [DONE]\n\n"


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def router(svc: Callable[[], DrugService], dependencies: Sequence[Any] = ()) -> APIRouter:
    """The facade's routes; `dependencies` guard the completion route (e.g. the readiness check)."""
    r = APIRouter(tags=["OpenAI-compatible"])

    @r.get("/v1/models", response_model=ModelList, responses=error_responses())
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=MODEL_ID)])

    @r.post("/v1/chat/completions", response_model=ChatCompletion,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "a chat.completion, or with stream=true chat.completion.chunk events"},
                       **error_responses(404, 413)}, dependencies=list(dependencies))
    def chat_completions(req: ChatRequest) -> Any:
        _check_model(req.model)
        question, history = conversation(req.messages)
        cid = f"chatcmpl-{current_request_id() or uuid.uuid4().hex}"
        created = int(time.time())
        if req.stream:
            events = svc().ask_stream(question, history)
            first = next(events)  # input and store errors become HTTP statuses before the stream starts
            return StreamingResponse(stream_completion(events, first, cid, created), media_type="text/event-stream")
        ans = svc().ask(question, history)
        log_answer(ans)
        return ChatCompletion(id=cid, created=created, model=MODEL_ID, answer=ans,
                              choices=[Choice(message=ResponseMessage(content=render_markdown(ans)))])

    return r
