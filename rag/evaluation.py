"""Evaluation over JSONL question files (format: ../shared/data/README.md and eval/build_paraphrase.py), through the
same service users call.

Question kinds (from `expected`): label (gold label ids + a section, or a population pattern for questions whose
labels have no such section), interaction (one pair's DDInter level), pairs (every pair of a multi-drug question),
refusal (a prescription request), unknown (a drug the KB does not have: never answered), indication (QiZhen-style
drug → indications, C1/C2/C3). Every kind is broken down by intent, language and tag, so a regression in one class
shows.

Citations are checked honestly: each label quote is re-read from the raw source file through its loader (not from
the store or a cache the quote was cut from), each graph quote against the edge re-read from the graph store; answers
without a label citation are counted on their own.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from kb_loaders.names import base_name
from kb_loaders.sections import CANONICAL_SECTIONS, openfda_section
from rag.answer.schema import Answer
from rag.core.errors import InvalidInput
from rag.retrieval.retriever import render_edge
from rag.service import DrugService

log = logging.getLogger(__name__)
LEVELS = {"major": 3, "moderate": 2, "minor": 1, "unknown": 0}


_CHILD_PUGH = re.compile(r"child[- ]?pugh", re.I)


def read_questions(path: Path) -> list[dict[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as e:
                raise InvalidInput(f"{path}:{n}: not JSON ({e.msg})") from e
            if not isinstance(q, dict) or not isinstance(q.get("question"), str):
                raise InvalidInput(f"{path}:{n}: each line needs a 'question' string")
            out.append(q)
    return out


def kind_of(q: dict[str, Any]) -> str:
    exp = q.get("expected") or {}
    if exp.get("answerable") is False:
        return "unknown"
    if exp.get("status") == "refused":
        return "refusal"
    if "pairs" in exp:
        return "pairs"
    if "interaction" in exp:
        return "interaction"
    if "indications" in exp:
        return "indication"
    if "set_ids" in exp:
        return "label"
    return "other"


class SourceTexts:
    """label id → canonical section → texts, read from the raw source files through the loaders (once)."""

    def __init__(self, svc: DrugService) -> None:
        from rag.ingest.pipeline import load_sources

        s = svc.settings.model_copy(update={"limit_labels": None, "ddinter_paths": [], "cmedkg_path": ""})
        labels, _, _ = load_sources(s)
        self.texts: dict[str, dict[str, list[str]]] = {}
        for lab in labels:
            by = self.texts.setdefault(lab.id, {})
            for sec in lab.sections:
                by.setdefault(sec.key, []).append(sec.text)


def citations_valid(svc: DrugService, ans: Answer, raw: SourceTexts) -> bool:
    """Each label quote is the raw source section text at [start, end); each graph quote is the edge re-read."""
    g = svc.gstore
    for c in ans.citations:
        if c.source == "label":
            texts = raw.texts.get(c.doc_id, {}).get(c.section or "", [])
            if not any(t[c.start: c.end] == c.quote for t in texts):
                return False
        else:
            edge = g.get_edge(c.doc_id)
            if edge is None or render_edge(edge)[c.start: c.end] != c.quote:
                return False
    return True


def predicted_level(ans: Answer, drugs: list[str]) -> str | None:
    """The severity the answer gives for a pair (None: the answer records no interaction for it)."""
    want = {base_name(d) for d in drugs}
    for chk in ans.interaction_checks:
        if {base_name(d) for d in chk.drug_ids} == want or {base_name(d) for d in chk.drugs} == want:
            return chk.severity
    best: str | None = None
    for it in ans.interactions:
        if {base_name(d) for d in it.drugs} == want or not want:
            if best is None or LEVELS[it.severity] > LEVELS[best]:
                best = it.severity
    return best


def _label_metrics(m: dict[str, list[float]], ans: Answer, exp: dict[str, Any]) -> None:
    gold = set(exp["set_ids"])
    labels = ans.metadata.retrieved_labels
    rank = next((i + 1 for i, lid in enumerate(labels) if lid in gold), None)
    m.setdefault("recall_at_1", []).append(float(rank is not None and rank <= 1))
    m.setdefault("recall_at_5", []).append(float(rank is not None and rank <= 5))
    m.setdefault("mrr", []).append(1.0 / rank if rank else 0.0)
    if exp.get("section"):
        sec = exp["section"] if exp["section"] in CANONICAL_SECTIONS else openfda_section(exp["section"])
        hit = any(c.source == "label" and c.doc_id in gold and c.section == sec for c in ans.citations)
        m.setdefault("cited_section_hit", []).append(float(hit))
        first = next((c for c in ans.citations if c.source == "label"), None)  # what a reader sees first
        m.setdefault("first_section_hit", []).append(float(first is not None and first.doc_id in gold
                                                           and first.section == sec))
    if exp.get("pattern"):
        rx = re.compile(exp["pattern"], re.I)
        # a Child-Pugh score (liver) is no sentence about children, though the sets' "child\b" pattern matches it
        hit = any(c.source == "label" and c.doc_id in gold and rx.search(_CHILD_PUGH.sub(" ", c.quote))
                  for c in ans.citations)
        m.setdefault("population_hit", []).append(float(hit))
    if exp.get("population"):
        asked = any(("adult or a child" in f) or ("成人还是儿童" in f) for f in ans.follow_up_questions)
        m.setdefault("asked_for_given_context", []).append(float(asked))
    if exp.get("status") == "answered":
        m.setdefault("false_refusal", []).append(float(ans.status == "refused"))


def score(q: dict[str, Any], ans: Answer, m: dict[str, list[float]]) -> None:
    """Add this answer's metrics for its question kind to `m`."""
    exp = q.get("expected") or {}
    k = kind_of(q)
    m.setdefault("answered", []).append(float(ans.status == "answered"))
    m.setdefault("no_label_citation", []).append(float(not any(c.source == "label" for c in ans.citations)))
    if k == "label":
        _label_metrics(m, ans, exp)
    elif k == "interaction":
        inter = exp["interaction"]
        want, got = inter.get("level"), predicted_level(ans, inter.get("drugs", []))
        ok = (want is None and got is None) or (want is not None and got == str(want).lower())
        m.setdefault("interaction_level_accuracy", []).append(float(ok))
    elif k == "pairs":
        oks = []
        for p in exp["pairs"]:
            want, got = p.get("level"), predicted_level(ans, p["drugs"])
            oks.append((want is None and got is None) or (want is not None and got == str(want).lower()))
        m.setdefault("pair_level_accuracy", []).extend(float(x) for x in oks)
        m.setdefault("all_pairs_correct", []).append(float(all(oks)))
        m.setdefault("called_safe", []).append(float(bool(re.search(r"\bsafe\b(?! to combine)", ans.answer))
                                                     and "not mean" not in ans.answer and "never" not in ans.answer))
    elif k == "refusal":
        m.setdefault("refused", []).append(float(ans.status == "refused"))
        m.setdefault("rx_answered", []).append(float(ans.status == "answered"))
    elif k == "other" and exp.get("status") == "answered":  # a question about a prescribed drug: never refused (a
        # drug the KB lacks is answered "insufficient evidence", counted by `answered`)
        m.setdefault("false_refusal", []).append(float(ans.status == "refused"))
    elif k == "unknown":
        m.setdefault("answered_as_other_drug", []).append(float(ans.status == "answered"))
        m.setdefault("names_the_unknown", []).append(float(str(exp.get("unknown", "")).lower() in ans.answer.lower()))
    elif k == "indication":
        gold_ind = [g for g in exp["indications"] if g]
        text = " ".join([ans.answer, *(f.text for f in ans.facts)]).lower()
        hits = sum(1 for g in gold_ind if g.lower() in text)
        frac = hits / len(gold_ind) if gold_ind else 0.0
        m.setdefault("indication_c1", []).append(float(hits >= 1))
        m.setdefault("indication_c2", []).append(float(frac >= 0.5))
        m.setdefault("indication_c3", []).append(float(frac >= 2 / 3))
        m.setdefault("answered_in_chinese", []).append(float(bool(re.search(r"[\u4e00-\u9fff]", ans.answer))))


def _summary(m: dict[str, list[float]]) -> dict[str, Any]:
    res: dict[str, Any] = {"n": len(m.get("answered", []))}
    for name, vals in m.items():
        if name == "latency_ms":
            res[name] = {"p50": round(float(np.percentile(vals, 50)), 1),
                         "p95": round(float(np.percentile(vals, 95)), 1)}
        elif vals:
            res[name] = round(float(np.mean(vals)), 4)
    return res


def evaluate(svc: DrugService, questions: Iterable[dict[str, Any]], progress: bool = True,
             breakdown: bool = True) -> dict[str, Any]:
    """Metrics per question kind, each with by_intent / by_lang / by_tag breakdowns (when `breakdown`)."""
    qs = list(questions)
    raw = SourceTexts(svc)
    per: dict[str, dict[str, list[float]]] = {}
    groups: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    for q in tqdm(qs, desc="eval", unit="q", disable=not progress):
        k = kind_of(q)
        ans = svc.ask(q["question"])
        exp = q.get("expected") or {}
        keys = {"by_intent": [str(exp.get("intent") or ("interaction" if k == "interaction" else k))],
                "by_lang": [str(q.get("lang") or ans.language)], "by_tag": list(q.get("tags") or ["plain"])}
        targets = [per.setdefault(k, {})]
        if breakdown:
            for axis, vals in keys.items():
                for v in vals:
                    targets.append(groups.setdefault(k, {}).setdefault(axis, {}).setdefault(v, {}))
        valid = float(citations_valid(svc, ans, raw))
        for m in targets:
            score(q, ans, m)
            m.setdefault("latency_ms", []).append(ans.metadata.latency_ms or 0.0)
            m.setdefault("citation_span_valid", []).append(valid)
    out: dict[str, Any] = {}
    for k, m in per.items():
        out[k] = _summary(m)
        for axis, by in groups.get(k, {}).items():
            out[k][axis] = {v: _summary(mm) for v, mm in sorted(by.items())}
    return out
