"""The Generator seam: a model writes a JSON answer constrained to `generation_schema`; the answer pipeline
grounds and checks it (rag.answer.grounding). Backends: rag.generation.in_process (transformers, in this process)
and rag.generation.openai_compatible (any OpenAI-compatible server); rag.components.make_generator picks one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rag.answer.gen_schema import parse_json
from rag.core.types import Evidence, Turn


@dataclass(slots=True)
class GenerationResult:
    raw_text: str
    raw_json: dict[str, Any] | None
    prompt_format: str
    model: str | None
    tokens_out: int
    seconds: float
    finish_reason: str | None = None  # "stop" | "length" | ...
    ttft_s: float | None = None


@runtime_checkable
class Generator(Protocol):
    name: str
    model: str | None

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult: ...

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]: ...


def as_json(text: str) -> dict[str, Any] | None:
    try:
        obj = parse_json(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
