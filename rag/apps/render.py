"""An Answer as readable Markdown with numbered citations (label or graph source, section, verbatim quote).

Used where the reader is a person in someone else's client (the OpenAI-compatible facade; MCP hosts get the
structured answer too). Citation ids (C1, S2, ...) become [1], [2] in order of `answer.citations`. List fields the
answer schema gains later are rendered generically (their `text` and `citations` if they have them), so a new kind
of finding is shown rather than dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from rag.answer.schema import Answer

log = logging.getLogger("drugrag.answers")

_KNOWN = {"schema_version", "question", "language", "status", "answer", "facts", "interactions", "citations",
          "follow_up_questions", "disclaimer", "metadata"}
_HEAD = {"en": {"interactions": "Interactions", "facts": "From the sources", "follow_up_questions": "You could ask",
                "citations": "Sources", "edge": "graph edge", "label": "label"},
         "zh": {"interactions": "相互作用", "facts": "来源要点", "follow_up_questions": "您可以继续问",
                "citations": "来源", "edge": "图谱关系", "label": "说明书"}}


def _refs(ids: Iterable[str], numbers: dict[str, int]) -> str:
    return "".join(f"[{numbers[i]}]" for i in ids if i in numbers)


def _item_text(item: Any) -> tuple[str, list[str]]:
    if isinstance(item, BaseModel):
        text = getattr(item, "text", None)
        cites = getattr(item, "citations", None) or []
        if text is None:
            text = item.model_dump_json(exclude={"citations"})
        return str(text), [str(c) for c in cites]
    return str(item), []


def citation_numbers(ans: Answer) -> dict[str, int]:
    return {c.id: i for i, c in enumerate(ans.citations, 1)}


def render_tail(ans: Answer) -> str:
    """Everything after the answer prose: interactions, facts, other findings, follow-ups, sources, disclaimer."""
    head = _HEAD.get(ans.language, _HEAD["en"])
    nums = citation_numbers(ans)
    out: list[str] = []
    if ans.interactions:
        out.append(f"**{head['interactions']}**")
        for it in ans.interactions:
            out.append(f"- {' + '.join(it.drugs)} — {it.severity.upper()}: {it.text} {_refs(it.citations, nums)}")
    if ans.facts:
        out.append(f"**{head['facts']}**")
        out += [f"- ({f.type}) {f.text} {_refs(f.citations, nums)}" for f in ans.facts]
    for name in type(ans).model_fields:
        value = getattr(ans, name)
        if name in _KNOWN or not value or not isinstance(value, list):
            continue
        out.append(f"**{name.replace('_', ' ').capitalize()}**")
        for item in value:
            text, cites = _item_text(item)
            out.append(f"- {text} {_refs(cites, nums)}".rstrip())
    if ans.follow_up_questions:
        out.append(f"**{head['follow_up_questions']}**")
        out += [f"- {q}" for q in ans.follow_up_questions]
    if ans.citations:
        out.append(f"**{head['citations']}**")
        for c in ans.citations:
            where = c.section_name or c.section or ""
            kind = head["label"] if c.source == "label" else head["edge"]
            span = f", {c.start}–{c.end}" if c.source == "label" else ""
            out.append(f"[{nums[c.id]}] {c.title} · {where} ({kind} {c.doc_id}{span}): “{c.quote}”")
    out.append(f"_{ans.disclaimer}_")
    return "\n\n".join(_blocks(out))


def _blocks(lines: list[str]) -> list[str]:
    """Group heading + bullet lines into Markdown blocks (one blank line between blocks)."""
    blocks: list[list[str]] = []
    for line in lines:
        if line.startswith(("- ", "[")) and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return ["\n".join(b) for b in blocks]


def render_markdown(ans: Answer) -> str:
    return f"{ans.answer}\n\n{render_tail(ans)}"


def log_answer(ans: Answer) -> None:
    """One log line per answer (with the request id): what was linked, routed, retrieved and generated."""
    m = ans.metadata
    log.info("answered", extra={"fields": {
        "status": ans.status, "language": ans.language, "linked": [e.id for e in m.linked][:8],
        "sections": m.routed_sections, "labels": len(m.retrieved_labels), "citations": len(ans.citations),
        "generator": m.generator, "fallback": m.fallback, "ms": m.latency_ms}})
