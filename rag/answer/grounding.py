"""Turn a model's JSON output into a grounded `Answer`, or refuse to (→ the caller falls back to the extractive answer).

The model is constrained to `generation_schema(source_ids)` (rag.answer.gen_schema). Grounding then trusts nothing it
said about sources:
- citations must be ids of retrieved sources (unknown ids dropped; a fact left with none is dropped and counted);
- each fact's quote must be a verbatim span of the cited source's stored section (exact find, then a whitespace-,
  case- and punctuation-insensitive find mapped back to exact offsets); otherwise it is replaced by the cited
  source's sentence that best supports the fact (token overlap; counted in replaced_quotes), and when no sentence
  supports it the citation is dropped;
- graph sources are cited as their whole edge rendering; interaction severity comes from the graph edge, never
  from the model.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from kb_loaders.sections import CANONICAL_SECTIONS
from rag.answer.cites import Citations
from rag.answer.gen_schema import (
    FACT_TYPES,
    MAX_ANSWER,
    MAX_CITES,
    MAX_FACT_TEXT,
    MAX_FACTS,
    MAX_FOLLOW_UP,
    MAX_FOLLOW_UPS,
    STATUSES,
    generation_schema,
    parse_json,
    schema_errors,
)
from rag.answer.quotes import best_support, locate_quote
from rag.answer.schema import Answer, AnswerMetadata, Fact, Interaction
from rag.answer.text import disclaimer as _disclaimer
from rag.core.types import Evidence, Source

log = logging.getLogger(__name__)

SEVERITIES = ("major", "moderate", "minor")


def _is_interaction_edge(src: Source) -> bool:
    return src.kind == "graph" and src.edge is not None and src.edge["type"] == "INTERACTS_WITH"


def _severity(src: Source) -> str:
    level = str((src.edge["props"].get("level") if src.edge else None) or "").strip().lower()
    return level if level in SEVERITIES else "unknown"


def _fact_type(model_type: Any, src: Source) -> str:
    if _is_interaction_edge(src):
        return "interaction"
    if src.kind == "graph":
        return "graph"
    if src.section in CANONICAL_SECTIONS:
        return str(src.section)
    return str(model_type) if model_type in FACT_TYPES else "other"


def _clip(s: Any, n: int) -> str:
    s = " ".join(str(s or "").split())
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


# "safe" claims are never grounded by absence of evidence; an interaction answer that makes one is not shipped
_SAFE_CLAIM = re.compile(
    r"\b(?:is|are|it's|it is|completely|totally|perfectly)\s+safe\b|\bsafe to (?:take|use|combine)\b|"
    r"\bno (?:known )?(?:drug )?interactions?\b(?! (?:is|are|was|were) (?:recorded|listed|found|documented))|"
    r"可以(?:放心|安全)?(?:一起|同时|联合)(?:服用|使用)|是安全的|没有(?:任何)?相互作用",
    re.I,
)

_NEGATION = re.compile(r"\b(?:not|never|no|cannot|can't|doesn't|don't|isn't|aren't|nor)\b|不|未|并非|无法", re.I)


def _claims_safe(text: str) -> bool:
    """A claim that a combination is safe / interaction-free (negated statements such as "does not mean it is
    safe" do not count)."""
    for m in _SAFE_CLAIM.finditer(text):
        before = text[max(0, m.start() - 30): m.start()]
        if m.group(0).lower().startswith("no ") or not _NEGATION.search(before):
            return True
    return False


def ground(
    raw: dict[str, Any] | str | None,
    evidence: Evidence,
    *,
    generator_name: str,
    model: str | None,
    prompt_format: str | None,
) -> tuple[Answer | None, dict[str, Any]]:
    """A grounded Answer from a model's output, or (None, stats) with stats["fallback"] saying why."""
    stats: dict[str, Any] = {"fallback": None, "schema_valid": False, "facts_in": 0, "facts_out": 0,
                             "dropped_facts": 0, "replaced_quotes": 0, "unknown_citations": 0,
                             "dropped_citations": 0, "dropped_reasons": {}}

    def fail(reason: str) -> tuple[None, dict[str, Any]]:
        stats["fallback"] = reason
        log.info("generated answer rejected (%s); falling back", reason)
        return None, stats

    def drop(reason: str) -> None:
        stats["dropped_facts"] += 1
        stats["dropped_reasons"][reason] = stats["dropped_reasons"].get(reason, 0) + 1

    # --- parse -----------------------------------------------------------------------------------------------
    if raw is None:
        return fail("empty output")
    if isinstance(raw, str):
        try:
            obj = parse_json(raw)
        except ValueError as e:
            return fail(f"invalid JSON: {e}")
    else:
        obj = raw
    if not isinstance(obj, dict) or not obj:
        return fail("empty or non-object JSON")
    ids = [s.sid for s in evidence.sources]
    stats["schema_valid"] = not schema_errors(obj, generation_schema(ids))

    status = obj.get("status")
    if status not in STATUSES:
        return fail(f"invalid status {status!r}")
    answer_text = obj.get("answer")
    if not isinstance(answer_text, str):
        return fail("answer is not a string")
    raw_facts = obj.get("facts", [])
    if not isinstance(raw_facts, list):
        return fail("facts is not a list")
    raw_follow = obj.get("follow_up_questions", [])
    if not isinstance(raw_follow, list):
        raw_follow = []

    # --- facts -----------------------------------------------------------------------------------------------
    cites = Citations()
    facts: list[Fact] = []
    cited_sources: list[Source] = []
    stats["facts_in"] = len(raw_facts)
    for rf in raw_facts[: MAX_FACTS * 2]:
        if len(facts) >= MAX_FACTS:
            break
        if not isinstance(rf, dict):
            drop("malformed")
            continue
        text = _clip(rf.get("text"), MAX_FACT_TEXT)
        quote = str(rf.get("quote") or "")
        rcites = rf.get("citations")
        rcites = rcites if isinstance(rcites, list) else [rcites] if isinstance(rcites, str) else []
        srcs: list[Source] = []
        for sid in rcites:
            src = evidence.source(str(sid).strip()) if isinstance(sid, str) else None
            if src is None:
                stats["unknown_citations"] += 1
            elif src not in srcs:
                srcs.append(src)
        if not srcs:
            drop("unknown_source")
            continue
        if not text and not quote.strip():
            drop("empty")
            continue
        fact_cids: list[str] = []
        for src in srcs[:MAX_CITES]:
            if src.kind == "graph":  # the whole edge rendering is the citation
                fact_cids.append(cites.add(src, 0, len(src.section_text)))
                cited_sources.append(src)
                continue
            span = locate_quote(quote, src.section_text) if quote else None
            if span is not None:
                fact_cids.append(cites.add(src, *span))
                cited_sources.append(src)
                continue
            sup = best_support(src.section_text, text, quote)
            if sup is None:
                stats["dropped_citations"] += 1
                continue
            fact_cids.append(cites.add(src, sup[0], sup[1], replaced=True))
            stats["replaced_quotes"] += 1
            cited_sources.append(src)
        if not fact_cids:
            drop("unsupported")
            continue
        first = srcs[0]
        if not text:  # a fact with a quote only: its text is the cited span
            c = next(c for c in cites.items if c.id == fact_cids[0])
            text = _clip(c.quote, MAX_FACT_TEXT)
        facts.append(Fact(type=_fact_type(rf.get("type"), first), text=text,
                          citations=list(dict.fromkeys(fact_cids))))
    stats["facts_out"] = len(facts)

    # --- interactions: every cited INTERACTS_WITH edge, and every edge for a pair the question asked about ----
    interactions: list[Interaction] = []
    asked = {frozenset(p) for p in evidence.interaction_pairs}
    seen: set[str] = set()
    for src in evidence.sources:
        edge = src.edge
        if edge is None or not _is_interaction_edge(src) or src.doc_id in seen:
            continue
        if src not in cited_sources and frozenset((edge.get("src"), edge.get("dst"))) not in asked:
            continue
        seen.add(src.doc_id)
        cid = cites.add(src, 0, len(src.section_text))
        drugs = [str(edge.get("src_name") or edge.get("src") or "?"),
                 str(edge.get("dst_name") or edge.get("dst") or "?")]
        interactions.append(Interaction(drugs=drugs, severity=_severity(src),  # type: ignore[arg-type]
                                        text=src.section_text, citations=[cid]))

    # --- status and answer text --------------------------------------------------------------------------------
    if status == "answered" and not facts and not interactions:
        return fail("answered with no supported facts" if raw_facts else "answered without facts")
    answer_text = _clip(answer_text, MAX_ANSWER)
    if not answer_text:
        if status == "answered":
            answer_text = _clip(" ".join(f.text for f in facts[:2]) or interactions[0].text, MAX_ANSWER)
        else:
            return fail(f"{status} without an explanation")
    if evidence.intent == "interaction" and any(_claims_safe(x) for x in [answer_text, *(f.text for f in facts)]):
        return fail("the answer calls a combination safe or interaction-free")

    follow = [_clip(f, MAX_FOLLOW_UP) for f in raw_follow if isinstance(f, str) and f.strip()][:MAX_FOLLOW_UPS]
    used = {c for f in facts for c in f.citations} | {c for i in interactions for c in i.citations}
    meta = AnswerMetadata(
        generator=generator_name, model=model, prompt_format=prompt_format,
        linked=list(evidence.linked), routed_sections=list(evidence.sections),
        retrieved_labels=list(evidence.retrieved_labels),
        dropped_facts=stats["dropped_facts"], replaced_quotes=stats["replaced_quotes"],
        extra={"grounding": {k: stats[k] for k in ("facts_in", "facts_out", "unknown_citations",
                                                   "dropped_citations", "schema_valid")}},
    )
    answer = Answer(
        question=evidence.question, language=evidence.language, status=status,
        answer=answer_text, facts=facts, interactions=interactions,
        citations=[c for c in cites.items if c.id in used], follow_up_questions=follow,
        disclaimer=_disclaimer(evidence.language), metadata=meta,
    )
    return answer, stats
