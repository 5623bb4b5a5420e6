"""Turn a model's JSON output into a grounded `Answer`, or refuse to (→ the caller falls back to the extractive answer).

The model is constrained to `generation_schema(source_ids)`: a compact schema, not the full `Answer`. Grounding then
trusts nothing it said about sources:
- citations must be ids of retrieved sources (unknown ids dropped; a fact left with none is dropped and counted);
- each fact's quote must be a verbatim span of the cited source's stored section (exact find, then a whitespace-,
  case- and punctuation-insensitive find mapped back to exact offsets); otherwise it is replaced by the cited
  source's sentence that best supports the fact (token overlap; counted in replaced_quotes), and when no sentence
  supports it the citation is dropped;
- graph sources are cited as their whole edge rendering; interaction severity comes from the graph edge, never
  from the model.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from typing import Any

from rag.answer.schema import Answer, AnswerMetadata, Citation, Fact, Interaction
from rag.evidence import Evidence, Source

try:
    from rag.answer.text import disclaimer as _disclaimer
except ImportError:  # pragma: no cover - rag.answer.text is another module's; keep a local fallback
    _DISCLAIMERS = {
        "en": "For reference only, from drug labels and a knowledge graph; not medical advice or a prescription. "
        "Ask a doctor or pharmacist.",
        "zh": "以上信息摘自药品说明书和知识图谱，仅供参考，不构成医疗建议或处方。请咨询医生或药师。",
    }

    def _disclaimer(lang: str) -> str:
        return _DISCLAIMERS.get(lang, _DISCLAIMERS["en"])


try:
    from kb_loaders.sections import CANONICAL_SECTIONS
except ImportError:  # pragma: no cover
    CANONICAL_SECTIONS = ("indications", "dosage", "contraindications", "warnings", "boxed_warning",
                          "adverse_reactions", "interactions", "pregnancy", "lactation", "pediatric", "geriatric",
                          "overdosage", "pharmacology", "storage", "ingredients", "other")

log = logging.getLogger(__name__)

STATUSES = ("answered", "insufficient_evidence", "needs_clarification")
FACT_TYPES: tuple[str, ...] = (*CANONICAL_SECTIONS, "interaction", "graph")
MAX_ANSWER = 600
MAX_FACTS = 6
MAX_FACT_TEXT = 400
MAX_CITES = 3
MAX_QUOTE = 300
MAX_FOLLOW_UPS = 2
MAX_FOLLOW_UP = 200

MIN_QUOTE_CHARS = 6  # a shorter "quote" is found anywhere and proves nothing: treat it as missing
SUPPORT_MIN_SCORE = 0.3  # share of the fact's (or quote's) tokens a replacement sentence must contain
SUPPORT_MIN_HITS = 2
SEVERITIES = ("major", "moderate", "minor")


# ---------------------------------------------------------------------------------------------------------------
# the schema the model is constrained to


def generation_schema(source_ids: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The compact JSON Schema for generation; citations are restricted to the retrieved source ids."""
    ids = list(dict.fromkeys(source_ids)) or ["S1"]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "answer", "facts", "follow_up_questions"],
        "properties": {
            "status": {"type": "string", "enum": list(STATUSES)},
            "answer": {"type": "string", "maxLength": MAX_ANSWER},
            "facts": {
                "type": "array",
                "maxItems": MAX_FACTS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "text", "citations", "quote"],
                    "properties": {
                        "type": {"type": "string", "enum": list(FACT_TYPES)},
                        "text": {"type": "string", "maxLength": MAX_FACT_TEXT},
                        "citations": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_CITES,
                            "items": {"type": "string", "enum": ids},
                        },
                        "quote": {"type": "string", "maxLength": MAX_QUOTE},
                    },
                },
            },
            "follow_up_questions": {
                "type": "array",
                "maxItems": MAX_FOLLOW_UPS,
                "items": {"type": "string", "maxLength": MAX_FOLLOW_UP},
            },
        },
    }


def schema_errors(obj: Any, schema: dict[str, Any]) -> list[str]:
    """JSON-schema validation messages (empty list = valid; also when jsonschema is not installed)."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - grounding does not depend on it; it only reports
        return []

    v = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in v.iter_errors(obj)][:20]


def parse_json(raw: str) -> Any:
    """The JSON object in a model's text: tolerates code fences and text around one object. Raises ValueError."""
    s = raw.strip()
    if not s:
        raise ValueError("empty output")
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", s, re.S)
    if fence:
        s = fence.group(1)
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        a, b = s.find("{"), s.rfind("}")
        if a < 0 or b <= a:
            raise ValueError("no JSON object in the output") from None
        try:
            return json.loads(s[a: b + 1])
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e.msg} at {e.pos}") from None


# ---------------------------------------------------------------------------------------------------------------
# locating quotes

_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u3000": " ",
}


def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """Casefolded text with whitespace runs collapsed and quote/dash variants folded; map[i] = index in `text`."""
    out: list[str] = []
    idx: list[int] = []
    prev_space = True  # also strips leading whitespace
    for i, ch in enumerate(text):
        ch = _FOLD.get(ch, ch)
        if ch.isspace():
            if not prev_space:
                out.append(" ")
                idx.append(i)
            prev_space = True
            continue
        prev_space = False
        ch = unicodedata.normalize("NFKC", ch).casefold()
        for c in ch:
            out.append(c)
            idx.append(i)
    if out and out[-1] == " ":
        out.pop()
        idx.pop()
    return "".join(out), idx


def locate_quote(quote: str, text: str) -> tuple[int, int] | None:
    """[start, end) of `quote` in `text`: exact, else whitespace/case/punctuation-insensitive mapped back."""
    q = quote.strip()
    if len(q) < MIN_QUOTE_CHARS:
        return None
    i = text.find(q)
    if i >= 0:
        return i, i + len(q)
    nq, _ = _normalise_with_map(q)
    nt, idx = _normalise_with_map(text)
    if len(nq) < MIN_QUOTE_CHARS:
        return None
    j = nt.find(nq)
    if j < 0:
        return None
    return idx[j], idx[j + len(nq) - 1] + 1


_NUM = re.compile(r"\d+(?:\.\d+)?")


def _overlap_tokens(text: str) -> set[str]:
    from rag.text import tokens_for_overlap

    return tokens_for_overlap(text) | set(_NUM.findall(text))


def _sentences(text: str) -> list[tuple[int, int]]:
    from rag.text import sentence_spans

    return sentence_spans(text, max_len=MAX_QUOTE + 100)


def best_support(text: str, *queries: str) -> tuple[int, int, float] | None:
    """The sentence span of `text` with the highest token overlap with any of `queries` (score = share of the
    query's tokens found), if it passes the support threshold."""
    qsets = [q for q in (_overlap_tokens(x) for x in queries if x and x.strip()) if q]
    if not qsets:
        return None
    best: tuple[float, int, int, int] | None = None  # (score, hits, -length, start) ...
    best_span = None
    for a, b in _sentences(text):
        stoks = _overlap_tokens(text[a:b])
        for q in qsets:
            hits = len(q & stoks)
            score = hits / len(q)
            if hits < min(SUPPORT_MIN_HITS, len(q)) or score < SUPPORT_MIN_SCORE:
                continue
            key = (score, hits, -(b - a), -a)
            if best is None or key > best:
                best, best_span = key, (a, b)
    if best is None or best_span is None:
        return None
    return best_span[0], best_span[1], best[0]


# ---------------------------------------------------------------------------------------------------------------
# grounding


class _Cites:
    """Answer citations, one per distinct (source, span); ids C1, C2, ... (as the extractive builder does)."""

    def __init__(self) -> None:
        self.items: list[Citation] = []

    def add(self, src: Source, start: int, end: int, replaced: bool = False) -> str:
        for c in self.items:
            if c.doc_id == src.doc_id and c.section == src.section and c.start == start and c.end == end:
                if not replaced and c.quote_replaced:  # a verbatim quote of the same span wins
                    c.quote_replaced = False
                return c.id
        cid = f"C{len(self.items) + 1}"
        self.items.append(Citation(
            id=cid, source=src.kind, doc_id=src.doc_id, title=src.title, section=src.section,
            section_name=src.section_name, version=src.version, quote=src.section_text[start:end],
            start=start, end=end, quote_replaced=replaced,
        ))
        return cid


def _is_interaction_edge(src: Source) -> bool:
    return src.kind == "graph" and bool(src.edge) and (src.edge or {}).get("type") == "INTERACTS_WITH"


def _severity(src: Source) -> str:
    level = str(((src.edge or {}).get("props") or {}).get("level") or "").strip().lower()
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
    cites = _Cites()
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
        if not _is_interaction_edge(src) or src.doc_id in seen:
            continue
        edge = src.edge or {}
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
