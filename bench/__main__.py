"""Benchmark: prints measured figures with ratios against a baseline taken in the same run.

    python -m bench [--questions N] [--chunks N] [--out DIR]

1. Embedding throughput on real label chunks: bfloat16 autocast (the default) vs float32 (baseline), and the
   cosine between the two, so a speed gain can't hide a quality loss.
2. `ask` latency after warm-up over dev questions on the KB in DRUGRAG_HOME (run `drugrag ingest` first): p50/p95,
   against a baseline of one bare dense vector search per question.
3. Peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
import zipfile
from pathlib import Path

import numpy as np

from rag.core.settings import get_settings

log = logging.getLogger(__name__)


def _chunks(data_dir: Path, n: int) -> list[str]:
    from rag.ingest.chunking import chunk_section

    zf = next((data_dir / "openfda").glob("*.zip"))
    with zipfile.ZipFile(zf) as z:
        recs = json.loads(z.read(z.namelist()[0]))["results"]
    out: list[str] = []
    for r in recs:
        for key in ("indications_and_usage", "dosage_and_administration", "warnings_and_cautions"):
            if key in r:
                out += [c.text for c in chunk_section(" ".join(r[key]), 1200)]
        if len(out) >= n:
            break
    return out[:n]


def bench_embedding(n: int) -> dict:
    from rag.retrieval.embedding import SentenceTransformerEmbedder

    s = get_settings()
    texts = _chunks(s.data_dir, n)
    res = {}
    vecs = {}
    for dtype in ("float32", "bfloat16"):
        e = SentenceTransformerEmbedder(s.embedding_model_path, max_seq_length=s.embedding_max_seq_length, dtype=dtype)
        e.embed_passages(texts[:8])
        t = time.perf_counter()
        vecs[dtype] = e.embed_passages(texts)
        res[dtype] = len(texts) / (time.perf_counter() - t)
    cos = float(np.mean(np.sum(vecs["float32"] * vecs["bfloat16"], axis=1)))
    return {
        "chunks": len(texts),
        "max_seq_length": s.embedding_max_seq_length,
        "fp32_chunks_per_s": round(res["float32"], 1),
        "bf16_chunks_per_s": round(res["bfloat16"], 1),
        "speedup_bf16_vs_fp32": round(res["bfloat16"] / res["float32"], 2),
        "mean_cosine_bf16_vs_fp32": round(cos, 5),
    }


def bench_ask(n: int) -> dict:
    from rag.evaluation import read_questions
    from rag.service import DrugService

    s = get_settings()
    qs = read_questions(s.data_dir / "eval" / "label_qa_dev.jsonl")
    step = max(1, len(qs) // n)
    qs = qs[::step][:n] + read_questions(s.data_dir / "eval" / "interaction_qa_dev.jsonl")[: max(1, n // 10)]
    svc = DrugService(s)
    t = time.perf_counter()
    svc.warm_up()
    warm = time.perf_counter() - t
    for q in qs[:5]:
        svc.ask(q["question"])
    lat, base = [], []
    for q in qs:
        t = time.perf_counter()
        svc.ask(q["question"])
        lat.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        vec = svc.embedder.embed_queries([q["question"]])[0].tolist()
        svc.vstore.search_dense(vec, 8)
        base.append((time.perf_counter() - t) * 1000)
    svc.close()
    p = lambda xs, q: round(float(np.percentile(xs, q)), 1)  # noqa: E731
    return {
        "questions": len(qs),
        "warm_up_s": round(warm, 2),
        "ask_ms_p50": p(lat, 50),
        "ask_ms_p95": p(lat, 95),
        "baseline_dense_search_ms_p50": p(base, 50),
        "baseline_dense_search_ms_p95": p(base, 95),
        "ask_vs_baseline_p50": round(p(lat, 50) / max(p(base, 50), 0.1), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--chunks", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-embedding", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out: dict = {}
    if not a.skip_embedding:
        out["embedding"] = bench_embedding(a.chunks)
    out["ask"] = bench_ask(a.questions)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(out, indent=1)
    print(text)
    rows = [f"| {sec}.{k} | {v} |" for sec, d in out.items() if isinstance(d, dict) for k, v in d.items()]
    md = "| figure | value |\n|---|---|\n" + "\n".join(rows) + f"\n| peak_rss_mb | {out['peak_rss_mb']} |\n"
    print(md)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "bench.json").write_text(text)
        (a.out / "bench.md").write_text(md)


if __name__ == "__main__":
    main()
