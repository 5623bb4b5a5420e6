"""TransformersGenerator: a local transformers model in this process (GPU bf16/fp16, or CPU fp32), optional peft
LoRA adapter, JSON-schema-constrained decoding (llguidance, see rag.generation.decoding), streaming."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence

from rag.answer.gen_schema import generation_schema
from rag.answer.prompts import TEMPLATED_FORMATS, build_messages, check_format
from rag.core.errors import ModelUnavailable
from rag.core.types import Evidence, Turn
from rag.generation.base import GenerationResult, as_json
from rag.generation.engine import GenRequest, LocalEngine


class TransformersGenerator:
    """A local transformers model (optionally + LoRA adapter) with JSON-schema-constrained decoding."""

    name = "transformers"

    def __init__(self, model_path: str, adapter: str | None = None, prompt_format: str = "chat_template",
                 device: str | None = None, max_new_tokens: int = 512, *, temperature: float = 0.0,
                 dtype: str | None = None, engine: LocalEngine | None = None):
        self.prompt_format = check_format(prompt_format)
        self.model: str | None = str(model_path)
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.engine = engine or LocalEngine(str(model_path), adapter=adapter, device=device, dtype=dtype)

    def request(self, question: str, evidence: Evidence, history: Sequence[Turn] = (), *,
                constrained: bool = True) -> GenRequest:
        msgs = build_messages(question, evidence, history, evidence.language)
        prompt = self.engine.render(self.prompt_format, msgs)
        schema = generation_schema([s.sid for s in evidence.sources]) if constrained else None
        return GenRequest(prompt=prompt, schema=schema, max_new_tokens=self.max_new_tokens,
                          temperature=self.temperature,
                          add_special_tokens=self.prompt_format not in TEMPLATED_FORMATS)

    def _result(self, r: GenRequest) -> GenerationResult:
        if r.error and not r.token_ids:
            raise ModelUnavailable(r.error)
        return GenerationResult(raw_text=r.text, raw_json=as_json(r.text), prompt_format=self.prompt_format,
                                model=self.model, tokens_out=r.tokens_out, seconds=r.seconds,
                                finish_reason=r.finish_reason, ttft_s=r.ttft)

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult:
        r = self.request(question, evidence, history)
        self.engine.run([r])
        return self._result(r)

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]:
        r = self.request(question, evidence, history)
        q: queue.Queue[str | None] = queue.Queue()
        r.on_text = q.put
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self.engine.run([r])
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                failure.append(e)
            finally:
                q.put(None)

        th = threading.Thread(target=work, name="drugrag-generate", daemon=True)
        th.start()
        try:
            while True:
                piece = q.get()
                if piece is None:
                    break
                yield piece
        finally:
            r.cancelled = True  # consumer gone (or done): stop generating
        th.join()
        if failure:
            raise failure[0]
        if r.error and not r.token_ids:
            raise ModelUnavailable(r.error)
