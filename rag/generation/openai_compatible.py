"""OpenAIGenerator: any OpenAI-compatible chat-completions server (vLLM in production, bench/model_server.py
locally) through `response_format={"type": "json_schema", ...}`, over httpx; streaming through SSE. The API request's
id travels as `X-Request-Id` (vLLM uses it as its request id), so one id finds a request in both servers' logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rag.answer.gen_schema import generation_schema
from rag.answer.prompts import build_messages
from rag.core.errors import ModelUnavailable
from rag.core.obs import outgoing_headers
from rag.core.types import Evidence, Turn
from rag.generation.base import GenerationResult, as_json


class OpenAIGenerator:
    """Any OpenAI-compatible chat-completions server (vLLM, bench.model_server) with a json_schema response format."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = "EMPTY",
                 timeout: float = 60.0, *, max_new_tokens: int = 512, temperature: float = 0.0,
                 chat_template_kwargs: dict[str, Any] | None = None, client: Any = None):
        """chat_template_kwargs: sent as vLLM's extra `chat_template_kwargs` (default: enable_thinking off, so
        Qwen3-style templates start the JSON at once); pass {} to send nothing."""
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model: str | None = model or None
        self.prompt_format = "chat_template"  # the server applies its model's chat template
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.chat_template_kwargs = {"enable_thinking": False} if chat_template_kwargs is None \
            else dict(chat_template_kwargs)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                                              headers=headers)

    def close(self) -> None:
        self._client.close()

    def _unavailable(self, e: Exception) -> ModelUnavailable:
        return ModelUnavailable(f"model server {self.base_url} unavailable: {type(e).__name__}: {e}")

    def _model_name(self) -> str:
        if self.model:
            return self.model
        import httpx

        try:
            resp = self._client.get(f"{self.base_url}/models")
            resp.raise_for_status()
            data = resp.json().get("data") or []
        except (httpx.HTTPError, ValueError) as e:
            raise self._unavailable(e) from e
        if not data:
            raise ModelUnavailable(f"model server {self.base_url} serves no model")
        self.model = str(data[0]["id"])
        return self.model

    def payload(self, question: str, evidence: Evidence, history: Sequence[Turn] = (), *,
                stream: bool = False, constrained: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model_name(),
            "messages": build_messages(question, evidence, history, evidence.language),
            "temperature": self.temperature,
            "max_tokens": self.max_new_tokens,
            "stream": stream,
        }
        if constrained:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "drug_answer", "schema": generation_schema([s.sid for s in evidence.sources]),
                "strict": True}}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if self.chat_template_kwargs:
            body["chat_template_kwargs"] = self.chat_template_kwargs
        return body

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult:
        import httpx

        body = self.payload(question, evidence, history)
        t0 = time.perf_counter()
        try:
            resp = self._client.post(f"{self.base_url}/chat/completions", json=body, headers=outgoing_headers())
        except httpx.HTTPError as e:
            raise self._unavailable(e) from e
        if resp.status_code >= 400:
            raise ModelUnavailable(f"model server {self.base_url} answered {resp.status_code}: {resp.text[:300]}")
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise ModelUnavailable(f"model server {self.base_url} sent an unexpected reply: {e}") from e
        usage = data.get("usage") or {}
        return GenerationResult(
            raw_text=text,
            raw_json=as_json(text),
            prompt_format=self.prompt_format,
            model=str(data.get("model") or self.model),
            tokens_out=int(usage.get("completion_tokens") or 0),
            seconds=time.perf_counter() - t0,
            finish_reason=choice.get("finish_reason"),
        )

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]:
        import httpx

        body = self.payload(question, evidence, history, stream=True)
        try:
            with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body,
                                     headers=outgoing_headers()) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise ModelUnavailable(
                        f"model server {self.base_url} answered {resp.status_code}: {resp.text[:300]}"
                    )
                yield from iter_sse_content(resp.iter_lines())
        except httpx.HTTPError as e:
            raise self._unavailable(e) from e


def iter_sse_content(lines: Iterator[str]) -> Iterator[str]:
    """Content deltas from OpenAI chat-completion SSE lines (`data: {...}` ... `data: [DONE]`)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            continue
        if chunk.get("error"):
            raise ModelUnavailable(f"model server error: {chunk['error']}")
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
