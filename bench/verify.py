"""Mutation benchmark of the generated-answer check: does it catch what models get wrong, and keep what is right?

    python -m bench.verify [--questions N] [--home DIR] [--out DIR]

For real questions over the real KB (the dev sets in ../shared/data/eval and eval/paraphrase/dev.jsonl), the
extractive answer's facts are written out as a model would write them (JSON with text, citations and quotes) and
checked by the same Grounder generated answers go through. Then each fact is corrupted the way models fail, one
mutation at a time, and checked again:

  dose_number   a dose number changed (500 mg → 1000 mg)       dose_unit    its unit changed (mg → g)
  frequency     the dosing frequency doubled                    polarity     "contraindicated" → "recommended"
  drug_swap     another drug named in the fact                  severity     an interaction's level raised/lowered
  safe          a recorded interaction called safe              invent_quote a claim and quote not in the source
  wrong_label   the fact cited to another drug's label

Printed per mutation: how many facts it applied to and the share caught (the corrupted fact not in the checked
answer), and for the unmutated facts the share wrongly dropped. The CPU capability is printed with the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.answer.gen_schema import MAX_FACTS
from rag.answer.grounding import Grounder
from rag.answer.schema import Answer
from rag.core.types import Evidence, Source
from rag.retrieval.retriever import Retrieval
from rag.service import DrugService

log = logging.getLogger("bench.verify")
UNIT_SWAP = {"mg": "g", "g": "mg", "mcg": "mg", "ml": "L", "mL": "L", "units": "mg", "%": "mg", "毫克": "克"}
FREQ_SWAP = [(r"\bonce daily\b", "twice daily"), (r"\bonce a day\b", "twice a day"),
             (r"\btwice daily\b", "four times daily"),
             (r"\btwice a day\b", "four times a day"), (r"\bevery (\d+) hours\b", None),
             (r"\bthree times daily\b", "six times daily"), (r"\bonce weekly\b", "twice weekly")]
POLARITY = [(r"\bis contraindicated\b", "is recommended"), (r"\bare contraindicated\b", "are recommended"),
            (r"\bcontraindicated\b", "recommended"), (r"\bshould not be\b", "should be"), (r"\bdo not\b", "do"),
            (r"\bmust not\b", "must"), (r"\bDo not\b", "Do"), (r"禁用", "推荐使用"), (r"禁忌", "适用")]
LEVELS = ("Major", "Moderate", "Minor")
PARAPHRASE_DEV = Path(__file__).resolve().parents[1] / "eval" / "paraphrase" / "dev.jsonl"
MUTATIONS = ("dose_number", "dose_unit", "frequency", "polarity", "drug_swap", "severity", "safe", "invent_quote",
             "wrong_label")


@dataclass
class Case:
    ret: Retrieval
    facts: list[dict[str, Any]]  # the model-shaped facts of a correct answer
    drug: str  # the question's drug (for swaps)


@dataclass
class Tally:
    applied: dict[str, int] = field(default_factory=lambda: {m: 0 for m in MUTATIONS})
    caught: dict[str, int] = field(default_factory=lambda: {m: 0 for m in MUTATIONS})
    correct_in: int = 0
    correct_dropped: int = 0


def model_facts(ans: Answer, ev: Evidence) -> list[dict[str, Any]]:
    """The answer's facts as a model writes them: text, the source id it cites, an exact quote."""
    out: list[dict[str, Any]] = []
    cites = {c.id: c for c in ans.citations}
    for f in ans.facts:
        c = cites.get(f.citations[0])
        src = next((s for s in ev.sources if c and s.doc_id == c.doc_id and s.section == c.section
                    and s.section_text[c.start: c.end] == c.quote), None)
        if c is None or src is None or src.kind != "label":
            continue
        quote = c.quote if len(c.quote) <= 300 else c.quote[:300].rsplit(" ", 1)[0]  # a model quotes ≤ 300 chars
        out.append({"type": f.type, "text": quote, "citations": [src.sid], "quote": quote})
    for it in ans.interactions:
        c = cites.get(it.citations[0])
        src = next((s for s in ev.sources if c and s.doc_id == c.doc_id), None)
        if src is not None:
            out.append({"type": "interaction", "text": it.text, "citations": [src.sid], "quote": ""})
    return out[:MAX_FACTS]  # what the generation schema lets a model write


def check(ret: Retrieval, facts: list[dict[str, Any]], svc: DrugService, extra: Source | None = None) -> list[bool]:
    """For each fact, whether it passes the check (is part of the checked answer)."""
    ev = ret.evidence if extra is None else dataclasses.replace(ret.evidence, sources=[*ret.evidence.sources, extra])
    g = Grounder(ev, svc.pipeline.drug_mentions, None)
    return [g.add(f) is not None for f in facts]


def _sub_first(pattern: str, repl: str | Callable[[re.Match[str]], str], text: str) -> str | None:
    new, n = re.subn(pattern, repl, text, count=1)
    return new if n and new != text else None


def mutate(kind: str, fact: dict[str, Any], case: Case, rng: random.Random, other_drugs: list[str]
           ) -> dict[str, Any] | None:
    text = fact["text"]
    f = dict(fact)
    if kind == "dose_number":
        new = _sub_first(r"(\d+(?:\.\d+)?)(\s*(?:mg|mcg|g|mL|ml|units|%|毫克))\b",
                         lambda m: f"{float(m.group(1)) * rng.choice((2, 3, 4, 10)):g}{m.group(2)}", text)
    elif kind == "dose_unit":
        new = _sub_first(r"(\d+(?:\.\d+)?\s*)(mg|mcg|g|mL|ml|units|毫克)\b",
                         lambda m: m.group(1) + UNIT_SWAP.get(m.group(2), "g"), text)
    elif kind == "frequency":
        new = None
        for pat, repl in FREQ_SWAP:
            new = _sub_first(pat, (lambda m: f"every {max(1, int(m.group(1)) // 2)} hours") if repl is None else repl,
                             text)
            if new:
                break
    elif kind == "polarity":
        new = next((n for pat, repl in POLARITY if (n := _sub_first(pat, repl, text))), None)
    elif kind == "drug_swap":
        other = rng.choice([d for d in other_drugs if d.lower() not in text.lower()])
        low = case.drug.lower()
        new = re.sub(re.escape(case.drug), other, text, flags=re.I) if low and low in text.lower() \
            else f"{other}: {text}"
    elif kind == "severity":  # an interaction's level (a label's "major surgery" is no severity claim)
        m = re.search(r"\b(Major|Moderate|Minor)\b", text) if fact["type"] == "interaction" else None
        new = text.replace(m.group(1), rng.choice([x for x in LEVELS if x != m.group(1)]), 1) if m else None
    elif kind == "safe":
        new = "These two drugs are safe to take together; there is no interaction." if fact["type"] == "interaction" \
            else None
    elif kind == "invent_quote":
        claim = rng.choice(("Take 40 mg every 2 hours until symptoms resolve.", "It is safe for all children.",
                            "No dose adjustment is ever needed in kidney disease.", "一日服用 12 次，每次 200 毫克。"))
        f["quote"] = claim
        new = claim
    else:
        return None
    if not new or new == text:
        return None
    f["text"] = new
    return f


def wrong_label(case: Case, svc: DrugService, fact: dict[str, Any]) -> tuple[dict[str, Any], Source] | None:
    """The fact cited to a passage of another drug's label (added to the evidence under a new id)."""
    src = case.ret.evidence.source(fact["citations"][0])
    if src is None or src.kind != "label":
        return None
    linked = {e.id for e in case.ret.evidence.linked}
    for h in svc.vstore.search_dense(svc.embedder.embed_queries([fact["text"]])[0].tolist(), 20):
        if not linked & set(h.payload.get("drug_ids", [])) and h.payload["section"] == src.section:
            s = svc.retriever.label_source(h)
            s.sid = f"S{len(case.ret.evidence.sources) + 1}"
            return {**fact, "citations": [s.sid]}, s
    return None


def dropped_reasons(ret: Retrieval, facts: list[dict[str, Any]], svc: DrugService) -> list[tuple[str, list[str]]]:
    """For a debugging look: why each correct fact was dropped."""
    g = Grounder(ret.evidence, svc.pipeline.drug_mentions, None)
    out = []
    for f in facts:
        if g.add(f) is None:
            src = ret.evidence.source(f["citations"][0])
            why = g._reasons(f["text"], src, 0, len(src.section_text)) if src else ["no source"]
            out.append((f["text"][:120], why))
    return out


def run(svc: DrugService, questions: list[str], seed: int = 7, progress: bool = True) -> dict[str, Any]:
    rng = random.Random(seed)
    other_drugs = ["warfarin", "metformin", "lisinopril", "atorvastatin", "amoxicillin", "sertraline", "ibuprofen"]
    t = Tally()
    from tqdm import tqdm

    for q in tqdm(questions, desc="verify", unit="q", disable=not progress):
        ret = svc.retrieve(q)
        ans = svc.pipeline.answer(ret)
        if ans.status != "answered":
            continue
        facts = model_facts(ans, ret.evidence)
        if not facts:
            continue
        drug = next((e.name for e in ret.evidence.linked if e.type == "Drug"), "")
        case = Case(ret, facts, drug)
        kept = check(ret, facts, svc)
        t.correct_in += len(facts)
        t.correct_dropped += kept.count(False)
        for kind in MUTATIONS:
            for i, fact in enumerate(facts):
                extra = None
                mutated: dict[str, Any] | None
                if kind == "wrong_label":
                    got = wrong_label(case, svc, fact)
                    if got is None:
                        continue
                    mutated, extra = got
                else:
                    mutated = mutate(kind, fact, case, rng, other_drugs)
                if mutated is None:
                    continue
                if not kept[i]:
                    continue  # only corrupt facts the check keeps when they are right
                out = check(ret, [*facts[:i], mutated, *facts[i + 1:]], svc, extra)
                t.applied[kind] += 1
                t.caught[kind] += int(not out[i])
                break  # one mutated fact per question and kind
    return {"mutations": {k: {"applied": t.applied[k], "caught": round(t.caught[k] / t.applied[k], 4)
                              if t.applied[k] else None} for k in MUTATIONS},
            "correct_facts": t.correct_in,
            "wrongly_dropped": round(t.correct_dropped / t.correct_in, 4) if t.correct_in else None}


def questions_from(files: list[Path], limit: int | None) -> list[str]:
    qs: list[str] = []
    for f in files:
        qs += [json.loads(line)["question"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(3).shuffle(qs)
    return qs[:limit] if limit else qs


def main() -> None:
    import torch

    from rag.core.settings import Settings, get_settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=None, help="DRUGRAG_HOME of an ingested KB (default: settings)")
    ap.add_argument("--questions", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    s = get_settings() if a.home is None else Settings(home=a.home)
    evald = s.data_dir / "eval"
    svc = DrugService(s)
    try:
        svc.warm_up()
        files = [evald / "label_qa_dev.jsonl", evald / "interaction_qa_dev.jsonl", PARAPHRASE_DEV]
        res = run(svc, questions_from([f for f in files if f.exists()], a.questions),
                  progress=sys.stderr.isatty())
    finally:
        svc.close()
    res["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    print(f"cpu capability: {res['cpu_capability']}")
    for k, v in res["mutations"].items():
        print(f"{k:13s} applied {v['applied']:5d}   caught {v['caught']}")
    print(f"unmutated facts {res['correct_facts']}   wrongly dropped {res['wrongly_dropped']}")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "bench_verify.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
