"""Turn a model's JSON output into a checked `Answer`, fact by fact, or refuse to (→ the extractive answer is used).

The model is constrained to `generation_schema(source_ids)` (rag.answer.gen_schema). Grounding trusts nothing it
said about sources or content:
- citations must be ids of retrieved sources, of a label about a drug the question names (or a graph edge);
- a fact's quote must be a verbatim span of the cited source's stored section (exact find, then a whitespace-, case-
  and punctuation-insensitive find mapped back to exact offsets). A quote the model invented is dropped — unless a
  sentence of the same source supports the fact by the same check below, which is then cited instead;
- the fact's own text must say what its cited text says (rag.answer.factcheck: numbers and units, frequency, route,
  drug names, contraindication polarity, severity words; never "safe" for an interaction), and, when an entailment
  model is configured, be entailed by it. A fact that fails is dropped and counted with its reason;
- the answer prose is rebuilt from the facts that passed; interaction severity always comes from the graph edge.

`Grounder.add` checks one fact as soon as the model has written it, so a stream can show each fact once it passed;
`Grounder.finish` assembles the same answer the non-streaming path gets from the same output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kb_loaders.names import norm_name
from rag.answer.cites import Draft, clean
from rag.answer.factcheck import Claim, check
from rag.answer.gen_schema import (
    FACT_TYPES,
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
from rag.answer.interactions import edge_interaction, pair_line, severity
from rag.answer.quotes import MAX_QUOTE, locate_quote, support_score
from rag.answer.schema import Answer, Fact, InteractionCheck
from rag.answer.text import t
from rag.core.text import sentence_spans
from rag.core.types import Evidence, Source

log = logging.getLogger(__name__)
DrugMentions = Callable[[str], Iterable[tuple[str, set[str]]]]
MIN_SUPPORT = 0.5  # share of the fact's content words a sentence must contain to stand in for an invented quote


class Entailment(Protocol):
    """An optional second check: does `premise` entail `hypothesis`? (rag.answer.entailment)"""

    def entails(self, premise: str, hypothesis: str) -> bool: ...


@dataclass
class Grounder:
    ev: Evidence
    drug_mentions: DrugMentions | None = None
    entailment: Entailment | None = None
    draft: Draft = field(init=False)
    stats: dict[str, Any] = field(default_factory=lambda: {"fallback": None, "facts_in": 0, "facts_out": 0,
                                                           "dropped_facts": 0,
                                                           "replaced_quotes": 0, "unknown_citations": 0,
                                                           "dropped_citations": 0, "dropped_reasons": {}})

    def __post_init__(self) -> None:
        self.draft = Draft(self.ev)
        self._linked = {e.id for e in self.ev.linked if e.type == "Drug"}

    def _drop(self, reason: str) -> None:
        self.stats["dropped_facts"] += 1
        self.stats["dropped_reasons"][reason] = self.stats["dropped_reasons"].get(reason, 0) + 1

    def _reasons(self, text: str, src: Source, start: int, end: int) -> list[str]:
        interaction = self.ev.intent == "interaction"
        if src.kind == "graph":
            reasons = check(text, Claim(src.section_text, level=src.edge_level), self.drug_mentions,
                            interaction=interaction)
            if not self._names_an_end(text, src):
                reasons.append("the fact names neither end of the cited edge")
            return reasons
        claim = Claim(src.section_text[start:end], own_drugs=frozenset(src.drug_ids) | {src.title.lower()})
        reasons = check(text, claim, self.drug_mentions, interaction=interaction)
        if not reasons and self.entailment is not None and not self.entailment.entails(claim.text, text):
            reasons.append("not entailed by the cited text")
        return reasons

    def _names_an_end(self, text: str, src: Source) -> bool:
        """A fact citing a graph edge is about it: it names one of its two ends (by name, or a drug by any name)."""
        e = src.edge
        if e is None:
            return False
        low = norm_name(text)
        if any(n and norm_name(n) in low for n in (e["src_name"], e["dst_name"], e["src"], e["dst"])):
            return True
        ids = {a for _, aliases in (self.drug_mentions(text) if self.drug_mentions else []) for a in aliases}
        return bool(ids & {e["src"], e["dst"]})

    def _cite(self, text: str, quote: str, src: Source) -> tuple[int, int, bool] | None:
        """The span of `src` this fact may cite: its own quote if verbatim and supporting, else the best supporting
        sentence of the same source (replaced=True), else None."""
        if src.kind == "graph":
            return (0, len(src.section_text), False) if not self._reasons(text, src, 0, len(src.section_text)) else None
        if self._linked and not self._linked & set(src.drug_ids):
            return None  # a label about another drug than the ones the question names
        span = locate_quote(quote, src.section_text) if quote else None
        if span is not None:  # a real quote: the fact must say what it says (no other sentence is looked for)
            return (span[0], span[1], False) if not self._reasons(text, src, *span) else None
        best: tuple[float, int, int] | None = None
        for a, b in sentence_spans(src.section_text, max_len=MAX_QUOTE + 100):
            score = support_score(text, src.section_text[a:b])
            if score >= MIN_SUPPORT and (best is None or score > best[0]) and not self._reasons(text, src, a, b):
                best = (score, a, b)
        return (best[1], best[2], True) if best else None

    def add(self, rf: Any) -> Fact | None:
        """Check one fact of the model's output; the Fact when it passed (it is then part of the answer)."""
        self.stats["facts_in"] += 1
        if len(self.draft.facts) >= MAX_FACTS or not isinstance(rf, dict):
            self._drop("malformed" if not isinstance(rf, dict) else "too_many")
            return None
        text = clean(str(rf.get("text") or ""), MAX_FACT_TEXT)
        quote = str(rf.get("quote") or "")
        raw = rf.get("citations")
        sids = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
        srcs: list[Source] = []
        for sid in sids:
            src = self.ev.source(str(sid).strip()) if isinstance(sid, str) else None
            if src is None:
                self.stats["unknown_citations"] += 1
            elif src not in srcs:
                srcs.append(src)
        if not srcs:
            self._drop("unknown_source")
            return None
        text = text or clean(quote, MAX_FACT_TEXT)
        if not text:
            self._drop("empty")
            return None
        cids: list[str] = []
        for src in srcs[:MAX_CITES]:
            got = self._cite(text, quote, src)
            if got is None:
                self.stats["dropped_citations"] += 1
                continue
            a, b, replaced = got
            self.stats["replaced_quotes"] += int(replaced)
            cite = edge_interaction(self.draft, src) if _is_edge(src) else self.draft.cites.add(src, a, b, replaced)
            cids.append(cite)
        if not cids:
            self._drop("unsupported")
            return None
        kind = _fact_type(rf.get("type"), srcs[0])
        fact = Fact(type=kind, text=text, citations=list(dict.fromkeys(cids)))
        self.draft.facts.append(fact)
        self.stats["facts_out"] += 1
        return fact

    def finish(self, obj: Any, generator_name: str, model: str | None, prompt_format: str | None
               ) -> tuple[Answer | None, dict[str, Any]]:
        """The checked answer from everything added so far and the output's top level, or (None, stats) with
        stats["fallback"] saying why the extractive answer is used instead."""
        d, ev, lang = self.draft, self.ev, self.ev.language
        if not isinstance(obj, dict) or not obj:
            return self._fail("empty or non-object JSON")
        self.stats["schema_valid"] = not schema_errors(obj, generation_schema([s.sid for s in ev.sources]))
        status = obj.get("status")
        if status not in STATUSES:
            return self._fail(f"invalid status {status!r}")
        if status != "answered":
            return self._fail(f"the model answered {status}")  # the extractive answer says so with citations
        self._pair_checks()
        if not d.facts:
            return self._fail("answered with no supported facts" if self.stats["facts_in"]
                              else "answered without facts")
        d.follow = [clean(str(f), MAX_FOLLOW_UP) for f in (obj.get("follow_up_questions") or [])
                    if isinstance(f, str) and f.strip()][:MAX_FOLLOW_UPS]
        d.meta.generator, d.meta.model, d.meta.prompt_format = generator_name, model, prompt_format
        d.meta.dropped_facts, d.meta.replaced_quotes = self.stats["dropped_facts"], self.stats["replaced_quotes"]
        d.meta.extra = {"grounding": {k: v for k, v in self.stats.items() if k != "fallback"}}
        lead = " ".join(c.text for c in d.checks) or t(lang, "From the cited sources:", "根据所引用的资料：")
        prose = lead + " " + " ".join(f.text for f in d.facts[:2] if f.type != "interaction" or not d.checks)
        return d.finish("answered", clean(prose, 900)), self.stats

    def _pair_checks(self) -> None:
        """Every pair the question asked about: its edges from the graph (listed as interactions), or no record."""
        d = self.draft
        names = {e.id: e.name for e in self.ev.linked}
        for a, b in self.ev.interaction_pairs:
            edges = [s for s in self.ev.sources if s.edge is not None and s.edge_level is not None
                     and {s.edge["src"], s.edge["dst"]} == {a, b}]
            cids = [edge_interaction(d, s) for s in edges]
            level = edges[0].edge_level if edges else None
            na, nb = names.get(a, a), names.get(b, b)
            d.checks.append(InteractionCheck(drugs=[na, nb], drug_ids=[a, b], recorded=bool(edges),
                                             severity=severity(level) if edges else None,
                                             text=pair_line(self.ev.language, na, nb, level, False), citations=cids))

    def _fail(self, reason: str) -> tuple[None, dict[str, Any]]:
        self.stats["fallback"] = reason
        log.info("generated answer not used (%s); falling back", reason)
        return None, self.stats


def _is_edge(src: Source) -> bool:
    return src.kind == "graph" and src.edge is not None and src.edge["type"] == "INTERACTS_WITH"


def _fact_type(model_type: Any, src: Source) -> str:
    if _is_edge(src):
        return "interaction"
    if src.kind == "graph":
        return "graph"
    return str(src.section) if src.section in FACT_TYPES else str(model_type) if model_type in FACT_TYPES else "other"


def ground(raw: dict[str, Any] | str | None, evidence: Evidence, *, generator_name: str, model: str | None,
           prompt_format: str | None, drug_mentions: DrugMentions | None = None,
           entailment: Entailment | None = None) -> tuple[Answer | None, dict[str, Any]]:
    """A checked Answer from a model's whole output, or (None, stats) with stats["fallback"] saying why."""
    g = Grounder(evidence, drug_mentions, entailment)
    if raw is None:
        return g._fail("empty output")
    obj: Any = raw
    if isinstance(raw, str):
        try:
            obj = parse_json(raw)
        except ValueError as e:
            return g._fail(f"invalid JSON: {e}")
    facts = obj.get("facts") if isinstance(obj, dict) else None
    for rf in (facts if isinstance(facts, list) else [])[: MAX_FACTS * 2]:
        g.add(rf)
    return g.finish(obj, generator_name, model, prompt_format)
