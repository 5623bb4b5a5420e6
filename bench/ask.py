"""`ask` latency on an ingested KB, in a process of its own (so its memory is that of a serving process).

    python -m bench.ask [--questions N] [--home DIR]

Warm (after `warm_up` and 5 questions), extractive answers, over dev questions (label questions spread over the
whole file + interaction questions); the baseline is one bare dense search (embed the question, top 8) each.
Prints one JSON object: warm-up seconds, ask p50/p95, baseline p50/p95, embedding backend, RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import cpu_line
from rag.core.settings import Settings, get_settings
from rag.ingest.report import peak_rss_mb


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def dev_questions(s: Settings, n: int) -> list[str]:
    from rag.evaluation import read_questions

    qs = read_questions(s.data_dir / "eval" / "label_qa_dev.jsonl")
    step = max(1, len(qs) // n)
    inter = read_questions(s.data_dir / "eval" / "interaction_qa_dev.jsonl")[: max(1, n // 10)]
    return [q["question"] for q in qs[::step][:n] + inter]


def measure(s: Settings, questions: list[str]) -> dict[str, Any]:
    from rag.service import DrugService

    svc = DrugService(s)
    t = time.perf_counter()
    svc.warm_up()
    warm = time.perf_counter() - t
    for q in questions[:5]:
        svc.ask(q)
    lat, base = [], []
    for q in questions:
        t = time.perf_counter()
        svc.ask(q)
        lat.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        svc.vstore.search_dense(svc.embedder.embed_queries([q])[0].tolist(), 8)
        base.append((time.perf_counter() - t) * 1000)
    backend = getattr(svc.embedder, "backend", svc.embedder.name)
    small = getattr(getattr(svc.embedder, "_runner", None), "small_choice", None)  # ONNX: threads for a question
    rss = rss_mb()
    svc.close()

    def p(xs: list[float], q: int) -> float:
        return round(float(np.percentile(xs, q)), 1)

    return {"questions": len(questions), "embedding_backend": backend,
            "small_calls": small, "warm_up_s": round(warm, 2),
            "ask_ms_p50": p(lat, 50), "ask_ms_p95": p(lat, 95), "dense_search_ms_p50": p(base, 50),
            "dense_search_ms_p95": p(base, 95), "rss_mb": rss,
            "peak_rss_mb": peak_rss_mb()}


def quality(s: Settings) -> dict[str, Any]:
    """recall@5 and cited-section hit on every label_qa_dev question; a copy "L~k" of a gold label L counts as L
    (the scale benchmark's re-labelled stores)."""
    from kb_loaders.sections import openfda_section
    from rag.evaluation import read_questions
    from rag.service import DrugService

    svc = DrugService(s)
    r5, hit = [], []
    for q in read_questions(s.data_dir / "eval" / "label_qa_dev.jsonl"):
        exp = q["expected"]
        gold = set(exp["set_ids"])
        ans = svc.ask(q["question"])
        labels = [lid.split("~")[0] for lid in ans.metadata.retrieved_labels]
        r5.append(float(bool(gold & set(labels[:5]))))
        sec = openfda_section(exp.get("section", "")) or exp.get("section")
        hit.append(float(any(c.source == "label" and c.doc_id.split("~")[0] in gold and c.section == sec
                             for c in ans.citations)))
    svc.close()
    return {"dev_questions": len(r5), "recall_at_5": round(float(np.mean(r5)), 4),
            "cited_section_hit": round(float(np.mean(hit)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--quality", action="store_true", help="also recall@5 / cited-section hit on label_qa_dev")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    s = get_settings()
    if a.home:
        s = s.model_copy(update={"home": a.home})
    res = {"cpu": cpu_line(), **measure(s, dev_questions(s, a.questions))}
    if a.quality:
        res["quality"] = quality(s)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
