"""Timing of the embedded vector store: `python -m rag.stores.bench_stores [--n 20000] [--dim 384]`.

Points carry real openFDA chunk texts (their sparse vectors and payloads) and random unit dense vectors; sparse
queries are the real development questions. Prints upsert throughput, search latency (p50/p95) for dense,
sparse, hybrid and filtered hybrid before and after `optimize()`, the optimize time, reopen time and disk use.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.retrieval.sparse import sparse_doc, sparse_query
from rag.stores.base import ChunkPoint, SearchFilter
from rag.stores.edge import EdgeVectorStore

SECTIONS = ("indications_and_usage", "contraindications", "warnings_and_cautions", "drug_interactions",
            "adverse_reactions", "dosage_and_administration", "warnings", "boxed_warning")


def _default_data() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_chunks(data: Path, n: int, size: int = 500) -> Iterator[tuple[str, dict[str, Any]]]:
    """Up to n (text, payload) chunks of openFDA label sections, cycling the sample when it is too small."""
    with zipfile.ZipFile(data / "openfda" / "drug-label-0001-of-0001.json.zip") as z:
        records = json.load(z.open(z.namelist()[0]))["results"]
    made, rnd = 0, 0
    while True:
        for rec in records:
            drugs = sorted({g.lower() for g in rec.get("openfda", {}).get("generic_name", [])}) or ["unknown"]
            label_id = f"{rec['set_id']}#{rnd}" if rnd else rec["set_id"]
            for section in SECTIONS:
                text = "\n".join(rec.get(section) or [])
                for i, s in enumerate(range(0, len(text), size)):
                    yield text[s:s + size], {
                        "label_id": label_id, "label_hash": "h", "version": "1", "title": drugs[0],
                        "language": "en", "source": "openfda", "source_file": "bench", "names": drugs,
                        "drug_ids": drugs, "section": section, "section_name": section, "chunk_index": i,
                        "n_chunks": 0, "start": s, "end": s + size, "text": text[s:s + size]}
                    made += 1
                    if made == n:
                        return
        rnd += 1


def _lat(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256, help="points per upsert call")
    ap.add_argument("--data", type=Path, default=_default_data())
    ap.add_argument("--path", type=Path, default=None, help="shard folder (default: a temporary one)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    t = time.perf_counter()
    chunks = list(real_chunks(args.data, args.n))
    sparse = [sparse_doc(text) for text, _ in chunks]
    t_sparse = time.perf_counter() - t
    dense = rng.standard_normal((len(chunks), args.dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    points = [ChunkPoint(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{i}")), dense=dense[i].tolist(),
                         sparse=sparse[i], payload=payload) for i, (_, payload) in enumerate(chunks)]
    n_chars = sum(len(text) for text, _ in chunks)
    print(f"{len(points)} points, dim {args.dim}; sparse vectors of {n_chars / 1e6:.1f}M chars in {t_sparse:.1f} s")

    questions = []
    with open(args.data / "eval" / "label_qa_dev.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q.get("lang") == "en":
                questions.append(q["question"])
    qs = [sparse_query(questions[i % len(questions)]) for i in range(args.queries)]
    qd = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    qd = (qd / np.linalg.norm(qd, axis=1, keepdims=True)).tolist()
    drugs = [p.payload["drug_ids"][0] for p in points[:: max(1, len(points) // args.queries)]]
    flt = [SearchFilter(drug_ids=[drugs[i % len(drugs)]], sections=["indications_and_usage", "contraindications"],
                        language="en") for i in range(args.queries)]

    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or Path(tmp) / "vectors"
        store = EdgeVectorStore(path, upsert_batch=args.batch)
        store.ensure_collection(args.dim)
        t = time.perf_counter()
        store.upsert(points)
        t_up = time.perf_counter() - t
        print(f"upsert: {t_up:.2f} s = {len(points) / t_up:,.0f} points/s (batch {args.batch}); "
              f"count {store.count()}; disk {store.disk_bytes() / 2**20:.1f} MiB; {store.info()}")

        def searches(tag: str) -> None:
            k = args.queries
            rows = {
                "dense": _lat(lambda i: store.search_dense(qd[i], 10), k),
                "sparse": _lat(lambda i: store.search_sparse(qs[i], 10), k),
                "hybrid": _lat(lambda i: store.search_hybrid(qd[i], qs[i], 10), k),
                "hybrid+filter": _lat(lambda i: store.search_hybrid(qd[i], qs[i], 10, flt[i]), k),
            }
            print(f"search {tag} (ms p50 / p95, {k} queries, top 10 with payload): " +
                  "; ".join(f"{name} {p50:.2f} / {p95:.2f}" for name, (p50, p95) in rows.items()))

        searches("before optimize")
        t = time.perf_counter()
        store.label_hashes()
        print(f"label_hashes (scroll of {len(points)} payload pairs): {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        changed = store.optimize()
        print(f"optimize: {time.perf_counter() - t:.1f} s (changed={changed}); disk "
              f"{store.disk_bytes() / 2**20:.1f} MiB; {store.info()}")
        searches("after optimize")
        store.close()
        t = time.perf_counter()
        store = EdgeVectorStore(path)
        n = store.count()
        mib = store.disk_bytes() / 2**20
        print(f"reopen + count: {time.perf_counter() - t:.2f} s ({n} points); disk {mib:.1f} MiB")
        searches("after reopen")
        store.close()


if __name__ == "__main__":
    main()
