"""Evaluation over JSONL question files (format: ../shared/data/README.md), through the same service as users."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from kb_loaders.sections import openfda_section
from rag.answer.schema import Answer
from rag.core.errors import InvalidInput
from rag.service import DrugService

log = logging.getLogger(__name__)
LEVELS = {"major": 3, "moderate": 2, "minor": 1, "unknown": 0}


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
        return "abstention"
    if "interaction" in exp:
        return "interaction"
    if "indications" in exp:
        return "indication"
    if "set_ids" in exp:
        return "label"
    return "other"


def predicted_level(ans: Answer, drugs: list[str]) -> str | None:
    want = {d.lower() for d in drugs}
    best: str | None = None
    for it in ans.interactions:
        names = {d.lower() for d in it.drugs}
        if len(names & want) >= 2 or (len(want) == 2 and names == want) or not want:
            if best is None or LEVELS[it.severity] > LEVELS[best]:
                best = it.severity
    if best is None and ans.interactions and len(want) == 2:  # names may differ in form (salt, brand)
        best = max((it.severity for it in ans.interactions), key=lambda s: LEVELS[s])
    return best


def citations_valid(svc: DrugService, ans: Answer) -> bool:
    """Independent check against the store: each label quote is the stored section text at [start, end)."""
    r = svc.retriever
    for c in ans.citations:
        if c.source != "label":
            continue
        texts = r.section_texts(c.doc_id, c.section or "")
        if not any(t[c.start: c.end] == c.quote for t in texts.values()):
            return False
    return True


def evaluate(svc: DrugService, questions: Iterable[dict[str, Any]], progress: bool = True) -> dict[str, Any]:
    qs = list(questions)
    per: dict[str, dict[str, list[float]]] = {}
    for q in tqdm(qs, desc="eval", unit="q", disable=not progress):
        k = kind_of(q)
        m = per.setdefault(k, {})
        ans = svc.ask(q["question"])
        exp = q.get("expected") or {}
        m.setdefault("latency_ms", []).append(ans.metadata.latency_ms or 0.0)
        m.setdefault("citation_span_valid", []).append(float(citations_valid(svc, ans)))
        m.setdefault("abstention_rate", []).append(float(ans.status != "answered"))
        if k == "label":
            gold = set(exp["set_ids"])
            labels = ans.metadata.retrieved_labels
            rank = next((i + 1 for i, lid in enumerate(labels) if lid in gold), None)
            m.setdefault("recall_at_1", []).append(float(rank is not None and rank <= 1))
            m.setdefault("recall_at_5", []).append(float(rank is not None and rank <= 5))
            m.setdefault("mrr", []).append(1.0 / rank if rank else 0.0)
            sec = openfda_section(exp.get("section", "")) or exp.get("section")
            hit = any(c.source == "label" and c.doc_id in gold and c.section == sec for c in ans.citations)
            m.setdefault("cited_section_hit", []).append(float(hit))
        elif k == "interaction":
            inter = exp["interaction"]
            want = inter.get("level")
            got = predicted_level(ans, inter.get("drugs", []))
            ok = (want is None and got is None) or (want is not None and got == str(want).lower())
            m.setdefault("interaction_level_accuracy", []).append(float(ok))
        elif k == "indication":
            gold_ind = [g for g in exp["indications"] if g]
            text = " ".join([ans.answer, *(f.text for f in ans.facts)]).lower()
            hits = sum(1 for g in gold_ind if g.lower() in text)
            frac = hits / len(gold_ind) if gold_ind else 0.0
            m.setdefault("indication_c1", []).append(float(hits >= 1))
            m.setdefault("indication_c2", []).append(float(frac >= 0.5))
            m.setdefault("indication_c3", []).append(float(frac >= 2 / 3))
    out: dict[str, Any] = {}
    for k, m in per.items():
        res: dict[str, Any] = {"n": len(m["latency_ms"])}
        for name, vals in m.items():
            if name == "latency_ms":
                res[name] = {
                    "p50": round(float(np.percentile(vals, 50)), 1),
                    "p95": round(float(np.percentile(vals, 95)), 1),
                }
            else:
                res[name] = round(float(np.mean(vals)), 4)
        out[k] = res
    return out
