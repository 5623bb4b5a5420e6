"""Benchmark: one run prints the CPU it ran on and every figure with its baseline from the same run.

    python -m bench [--chunks 256] [--llama-chunks 600] [--questions 200] [--cold] [--out DIR]

1. CPU line: model, ISA flags, torch's dispatch capability (honours ATEN_CPU_CAPABILITY), ONNX Runtime's kernels.
2. Embedding chunks/s per backend on real label chunks (torch fp32 / bf16, ONNX fp32 / int8, and the previous
   default path), each with its mean/min cosine to torch fp32.
3. Full ingest of the configured sources into a fresh DRUGRAG_HOME (a `drugrag ingest` subprocess; empty
   embedding cache; the machine's backend calibration reused unless --cold): seconds per stage, peak RSS.
4. `ask` p50/p95 (warm, extractive) on that KB, in its own process (bench.ask), vs a bare dense search.
5. The same chunks through a plain llama-index pipeline (bench.llama): ingest chunks/s on --llama-chunks chunks,
   projected to the whole sample, and query p50/p95 on an index of every chunk; ratios against 3 and 4.

Simulate an AVX2-only CPU on a newer one with
`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python -m bench` (torch is capped;
ONNX Runtime is not: its line says which kernels it used).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import cpu_line
from rag.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _bench_cache(home: Path) -> Path:
    return home / "cache" / "embeddings.sqlite"


def _fresh_home(s: Settings, home: Path, cold: bool) -> Path:
    if home.exists() and any(home.iterdir()):
        raise SystemExit(f"{home} is not empty: the benchmark ingests into a fresh home")
    home.mkdir(parents=True, exist_ok=True)
    # an embedding cache of its own: the ingest figure is the model's work, not the machine-wide cache's hits
    os.environ["DRUGRAG_EMBEDDING_CACHE_PATH"] = str(_bench_cache(home))
    if cold:  # a machine cache of its own: the ingest measures the backends (and exports ONNX) as a new machine does
        os.environ["DRUGRAG_MACHINE_CACHE"] = str(home / "machine-cache")
    return home


def _run_json(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def bench_ingest(s: Settings, home: Path) -> dict[str, Any]:
    env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_EMBEDDING_MODEL": s.embedding_model_path}
    t = time.perf_counter()
    rep = _run_json([sys.executable, "-m", "rag.apps.cli", "ingest", "--json"], env)
    wall = time.perf_counter() - t
    emb = rep.get("embedding") or {}
    cal = emb.get("calibration") or {}
    return {"wall_s": round(wall, 1), "total_s": rep["seconds"]["total"], "seconds": rep["seconds"],
            "labels": rep["labels"], "chunks": rep["chunks"], "nodes": rep["nodes"], "edges": rep["edges"],
            "embed_chunks_per_s": rep["embed_chunks_per_s"], "embedding_backend": emb.get("backend"),
            "texts": emb.get("texts"), "distinct_texts": emb.get("distinct"),
            "embedded_by_model": emb.get("embedded"), "calibrated_now": cal.get("cached") is False,
            "calibration_s": cal.get("seconds") if cal.get("cached") is False else 0.0,
            "peak_rss_mb": rep["peak_rss_mb"], "store_mb": {k: round((v or 0) / 2**20, 1)
                                                           for k, v in rep["store_bytes"].items()}}


def bench_llama(s: Settings, home: Path, n: int, questions: list[str], total_chunks: int) -> dict[str, Any]:
    from bench.embedding import real_chunk_texts
    from bench.llama import hf_embedder, ingest_rate, query_latency
    from rag.components import make_embedder

    every = real_chunk_texts(s, 10**9)
    hf = hf_embedder(s)
    out: dict[str, Any] = {"ingest": ingest_rate(s, every[:n] if n else every, hf)}
    out["projected_full_ingest_s"] = round(total_chunks / out["ingest"]["chunks_per_s"], 1)
    # the ingest's vectors, from its embedding cache (same model path, so the machine's backend choice applies)
    ours = make_embedder(s.model_copy(update={"home": home, "embedding_model": s.embedding_model_path,
                                              "embedding_cache_path": _bench_cache(home)}))
    out["query"] = query_latency(every, ours.embed_passages(every), questions, hf)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=256, help="real chunks per embedding backend")
    ap.add_argument("--llama-chunks", type=int, default=600, help="chunks llama-index embeds (0 = all)")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--cold", action="store_true", help="measure the ingest with this machine's first calibration")
    ap.add_argument("--skip-embedding", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="ingest into this (new) home and keep it")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    s = get_settings()
    out: dict[str, Any] = {"cpu": cpu_line(), "command": " ".join(["python -m bench", *sys.argv[1:]])}
    print(json.dumps(out["cpu"]), flush=True)
    if not a.skip_embedding:
        from bench.embedding import bench_backends, onnx_files, real_chunk_texts

        out["embedding"] = bench_backends(s, real_chunk_texts(s, a.chunks))
        out["onnx_files"] = onnx_files(s)
        print(json.dumps(out["embedding"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="drugrag-bench-") as tmp:
        home = _fresh_home(s, a.keep or Path(tmp) / "home", a.cold)
        out["ingest"] = bench_ingest(s, home)
        print(json.dumps(out["ingest"]), flush=True)
        env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_EMBEDDING_MODEL": s.embedding_model_path}
        out["ask"] = _run_json([sys.executable, "-m", "bench.ask", "--questions", str(a.questions)], env)
        out["ask"].pop("cpu", None)
        print(json.dumps(out["ask"]), flush=True)
        from bench.ask import dev_questions

        out["llama_index"] = bench_llama(s, home, a.llama_chunks, dev_questions(s, a.questions),
                                         out["ingest"]["chunks"])
    li = out["llama_index"]
    out["ratios"] = {
        "ingest_x_faster_than_llama_index": round(li["projected_full_ingest_s"] / out["ingest"]["total_s"], 2),
        "ask_p95_vs_llama_query_p95": round(out["ask"]["ask_ms_p95"] / li["query"]["query_ms_p95"], 2),
    }
    text = json.dumps(out, indent=1, ensure_ascii=False)
    print(text)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "bench.json").write_text(text)


if __name__ == "__main__":
    main()
