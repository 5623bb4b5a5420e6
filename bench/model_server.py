"""A small OpenAI-compatible server for a local transformers model: the CPU stand-in for vLLM.

    python -m bench.model_server --model PATH [--port 8001] [--host 127.0.0.1] [--adapter DIR] [--max-batch 8]

Endpoints: POST /v1/chat/completions (non-streaming, and `stream: true` as OpenAI SSE chunks), GET /v1/models,
GET /health. `response_format` {"type": "json_schema", "json_schema": {"schema": ...}} and {"type": "json_object"}
are enforced by constrained decoding (the same engine as the in-process backend). Requests that arrive together are
batched into one generate() call (up to --max-batch), so concurrency raises throughput as it does on vLLM (though
without continuous batching: a request that arrives mid-batch waits for the next one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.answer.prompts import TEMPLATED_FORMATS, check_format
from rag.core.errors import DrugRagError
from rag.generation.engine import GenRequest, LocalEngine

log = logging.getLogger("bench.model_server")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") in ("text", "input_text"))
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    n: int = Field(default=1, ge=1, le=1)


class BatchWorker:
    """One thread that owns the model: takes queued requests, runs them in batches."""

    def __init__(self, engine: LocalEngine, max_batch: int = 8, gap_s: float = 0.02, max_wait_s: float = 0.25):
        self.engine = engine
        self.max_batch = max(1, max_batch)
        self.gap_s = gap_s  # keep collecting while requests arrive within this gap of each other...
        self.max_wait_s = max_wait_s  # ...for at most this long
        self.q: queue.Queue[tuple[GenRequest, Any] | None] = queue.Queue()
        self.batches = 0
        self._thread = threading.Thread(target=self._loop, name="model-server-batcher", daemon=True)
        self._thread.start()

    def submit(self, req: GenRequest, done: Any) -> None:
        self.q.put((req, done))

    def stop(self) -> None:
        self.q.put(None)

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            batch = [item]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch:
                wait = min(self.gap_s, deadline - time.perf_counter())
                if wait <= 0:
                    break
                try:
                    nxt = self.q.get(timeout=wait)
                except queue.Empty:
                    break
                if nxt is None:
                    self.q.put(None)
                    break
                batch.append(nxt)
            live = [(r, d) for r, d in batch if not r.cancelled]
            self.batches += 1
            try:
                self.engine.run([r for r, _ in live])
            except Exception as e:
                log.exception("batch failed")
                for r, _ in live:
                    r.error = r.error or str(e)
            for r, d in batch:
                try:
                    d(r)
                except Exception:
                    log.exception("completion callback failed")


def _schema_of(rf: dict[str, Any] | None) -> dict[str, Any] | None:
    if not rf:
        return None
    kind = rf.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        js = rf.get("json_schema") or {}
        schema = js.get("schema") if isinstance(js, dict) else None
        if not isinstance(schema, dict):
            raise ValueError("response_format.json_schema.schema must be a JSON object")
        return schema
    raise ValueError(f"unsupported response_format type {kind!r}")


def create_app(model_path: str, *, adapter: str | None = None, device: str | None = None,
               served_name: str | None = None, prompt_format: str = "chat_template", max_batch: int = 8,
               default_max_tokens: int = 512, max_tokens_limit: int = 4096, engine: LocalEngine | None = None):
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, StreamingResponse

    check_format(prompt_format)
    name = served_name or Path(model_path).name
    eng = engine or LocalEngine(model_path, adapter=adapter, device=device)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await asyncio.to_thread(eng.load)
        state["worker"] = BatchWorker(eng, max_batch=max_batch)
        log.info("serving %s as %r (max batch %d)", model_path, name, max_batch)
        yield
        state["worker"].stop()

    app = FastAPI(title="drugrag model server", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok" if eng.loaded else "loading", "model": name, "device": eng.device,
                "batches": state["worker"].batches if "worker" in state else 0}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "drugrag"}]}

    def make_request(body: ChatRequest) -> GenRequest:
        try:
            schema = _schema_of(body.response_format)
        except ValueError as e:
            raise HTTPException(400, str(e)) from e
        if schema is not None:
            err = eng.check_schema(schema)
            if err:
                raise HTTPException(400, f"invalid JSON schema: {err}")
        msgs = []
        for m in body.messages:
            role = "system" if m.role == "developer" else m.role
            if role == "tool":
                raise HTTPException(400, "tool messages are not supported")
            msgs.append({"role": role, "content": m.text()})
        try:
            prompt = eng.render(prompt_format, msgs)
        except DrugRagError as e:
            raise HTTPException(400, str(e)) from e
        max_new = min(body.max_completion_tokens or body.max_tokens or default_max_tokens, max_tokens_limit)
        return GenRequest(prompt=prompt, schema=schema, max_new_tokens=max_new,
                          temperature=1.0 if body.temperature is None else body.temperature,
                          top_p=1.0 if body.top_p is None else body.top_p,
                          add_special_tokens=prompt_format not in TEMPLATED_FORMATS)

    def usage(r: GenRequest) -> dict[str, int]:
        return {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.tokens_out,
                "total_tokens": r.prompt_tokens + r.tokens_out}

    def finish(r: GenRequest) -> str:
        return "length" if r.finish_reason in ("length", "cancelled") else "stop"

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> Any:
        if "worker" not in state:
            raise HTTPException(503, "model is loading")
        req = make_request(body)
        loop = asyncio.get_running_loop()
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        if not body.stream:
            fut: asyncio.Future[GenRequest] = loop.create_future()

            def resolve(r: GenRequest) -> None:
                if not fut.done():
                    fut.set_result(r)

            state["worker"].submit(req, lambda r: loop.call_soon_threadsafe(resolve, r))
            try:
                r = await fut
            except asyncio.CancelledError:
                req.cancelled = True
                raise
            if r.error and not r.token_ids:
                return JSONResponse({"error": {"message": r.error, "type": "server_error"}}, status_code=500)
            return {"id": cid, "object": "chat.completion", "created": created, "model": name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": r.text},
                                 "finish_reason": finish(r)}],
                    "usage": usage(r)}

        aq: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def on_text(piece: str) -> None:
            loop.call_soon_threadsafe(aq.put_nowait, ("text", piece))

        req.on_text = on_text
        state["worker"].submit(req, lambda r: loop.call_soon_threadsafe(aq.put_nowait, ("done", r)))
        include_usage = bool((body.stream_options or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> str:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": reason}], **extra}
            return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            try:
                yield chunk({"role": "assistant", "content": ""})
                while True:
                    kind, val = await aq.get()
                    if kind == "text":
                        yield chunk({"content": val})
                        continue
                    r: GenRequest = val
                    if r.error and not r.token_ids:
                        yield f"data: {json.dumps({'error': {'message': r.error, 'type': 'server_error'}})}\n\n"
                    else:
                        yield chunk({}, finish(r))
                        if include_usage:
                            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                                   "choices": [], "usage": usage(r)}
                            yield f"data: {json.dumps(obj)}\n\n"
                    yield "data: [DONE]\n\n"
                    return
            finally:
                req.cancelled = True  # client gone or finished: stop generating for it

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="OpenAI-compatible server for a local transformers model")
    ap.add_argument("--model", required=True, help="local model directory")
    ap.add_argument("--adapter", default=None, help="peft LoRA adapter directory")
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    ap.add_argument("--prompt-format", default="chat_template")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=512, help="default max_tokens")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    app = create_app(args.model, adapter=args.adapter, device=args.device, served_name=args.served_model_name,
                     prompt_format=args.prompt_format, max_batch=args.max_batch, default_max_tokens=args.max_tokens)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
