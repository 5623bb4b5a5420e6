"""A scripted Generator for unit tests of the answer path without a model.

Each call takes the next entry of the script: a dict (sent as JSON), a str (sent as is), an exception (raised), or a
callable(question, evidence) returning one of those. The last entry repeats. Calls are recorded, so a test can assert
that nothing reached the model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rag.core.types import Evidence, Turn
from rag.generation.base import GenerationResult, as_json

Script = dict[str, Any] | str | BaseException | Callable[[str, Evidence], Any]


class FakeGenerator:
    name = "fake"

    def __init__(self, *script: Script, model: str = "scripted", chunk: int = 7) -> None:
        if not script:
            raise ValueError("a FakeGenerator needs at least one scripted output")
        self.script = list(script)
        self.model: str | None = model
        self.prompt_format = "chat_template"
        self.chunk = chunk
        self.calls: list[tuple[str, Evidence]] = []

    def _next(self, question: str, evidence: Evidence) -> str:
        self.calls.append((question, evidence))
        item = self.script[min(len(self.calls) - 1, len(self.script) - 1)]
        if callable(item) and not isinstance(item, BaseException):
            item = item(question, evidence)
        if isinstance(item, BaseException):
            raise item
        return item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult:
        t = time.perf_counter()
        text = self._next(question, evidence)
        return GenerationResult(raw_text=text, raw_json=as_json(text), prompt_format=self.prompt_format,
                                model=self.model, tokens_out=len(text) // 4, seconds=time.perf_counter() - t,
                                finish_reason="stop")

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]:
        text = self._next(question, evidence)
        for i in range(0, len(text), self.chunk):
            yield text[i: i + self.chunk]
