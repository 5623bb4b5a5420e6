"""Scale benchmark: qdrant-edge KBs of 10k / 100k / 1M chunks, and the graph scaled x10.

    python -m bench.scale [--sizes 10000,100000,1000000] [--quality-at 100000] [--graph-scale 10]
                          [--optimize-upto 1000000] [--questions 200] [--kb DIR]

Vector stores are built from the ingested KB at --kb (default DRUGRAG_HOME; run `drugrag ingest` first): its real
chunks (payloads, BM25 vectors and real embeddings from the KB's embedding cache) re-labelled into copies — copy k
of label L is label "L~k", a realistic stand-in for the many manufacturers of one drug in the full openFDA set —
until the store holds N chunks. Copies are registered in a copy of the KB's graph (Drug -HAS_LABEL-> Label), so a
question about a drug filters over all its copies, as it would with 250k real labels. Latency stores give each copy
its chunk's real vector plus Gaussian noise (cosine about 0.95 to the original: near-duplicates, the hard case for
HNSW); the quality store (--quality-at) uses the exact real vectors, and a hit on a copy of a gold label counts.

For each size: build time, `optimize()` (HNSW) time where N <= --optimize-upto, disk (the build runs in a child
process that exits before the ask, so its memory does not squeeze the page cache), and in a fresh process
(bench.ask): ask p50/p95 (warm, extractive), RSS and peak RSS. The graph part loads DDInter + the Chinese KG
replicated x1 and x--graph-scale into fresh kuzu stores and times the graph calls an answer makes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.machine import cpu_line
from rag.core.settings import Settings, get_settings

log = logging.getLogger(__name__)
NS = uuid.UUID("0b6d6a59-2f51-4a63-9d1c-4e8a3c2f7a10")


def real_chunks(kb: Settings) -> tuple[list[dict[str, Any]], np.ndarray, list[Any], list[Any]]:
    """(payloads, dense vectors from the KB's embedding cache, BM25 vectors, labels) of every real chunk."""
    from rag.components import make_embedder
    from rag.ingest.pipeline import label_points, load_sources
    from rag.retrieval.sparse import sparse_doc

    labels, _, _ = load_sources(kb.model_copy(update={"ddinter_paths": [], "cmedkg_path": ""}))
    payloads: list[dict[str, Any]] = []
    texts: list[str] = []
    for lab in labels:
        p, t = label_points(lab, kb)
        payloads += p
        texts += t
    dense = make_embedder(kb).embed_passages(texts, progress=True)
    return payloads, dense, [sparse_doc(p["text"]) for p in payloads], labels


def build_store(kb: Settings, home: Path, n: int, real: tuple[list[dict[str, Any]], np.ndarray, list[Any], list[Any]],
                noise: bool, optimize: bool, seed: int = 0) -> dict[str, Any]:
    from rag.components import make_graph_store
    from rag.ingest.pipeline import label_drug_nodes
    from rag.stores.base import ChunkPoint
    from rag.stores.edge import EdgeVectorStore

    payloads, dense, sparse, labels = real
    src = kb.kuzu_path
    if src.is_dir():
        shutil.copytree(src, home / "kuzu")
    else:  # kuzu 0.11: one file (+ a .wal)
        for f in (src, src.with_name(src.name + ".wal")):
            if f.exists():
                shutil.copy2(f, home / f.name)
    store = EdgeVectorStore(home / "qdrant-edge")
    store.ensure_collection(dense.shape[1])
    rng = np.random.default_rng(seed)
    sigma = 0.33 / np.sqrt(dense.shape[1])  # |noise| ~ 0.33: cosine ~0.95 to the original
    t = time.perf_counter()
    made, copy = 0, 0
    bar = tqdm(total=n, desc=f"build {n:,}", unit="chunk")
    while made < n:
        take = min(len(payloads), n - made)
        vecs = dense[:take]
        if copy and noise:
            vecs = vecs + rng.normal(0.0, sigma, vecs.shape).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        points = []
        for i in range(take):
            p = payloads[i]
            lid = p["label_id"] if copy == 0 else f"{p['label_id']}~{copy}"
            cid = p["chunk_id"] if copy == 0 else str(uuid.uuid5(NS, f"{p['chunk_id']}|{copy}"))
            points.append(ChunkPoint(cid, vecs[i].tolist(), sparse[i], {**p, "label_id": lid, "chunk_id": cid}))
        for j in range(0, len(points), 1024):
            store.upsert(points[j:j + 1024])
            bar.update(len(points[j:j + 1024]))
        made += take
        copy += 1
    bar.close()
    out: dict[str, Any] = {"chunks": store.count(), "copies": copy, "upsert_s": round(time.perf_counter() - t, 1)}
    copied = {p["label_id"] for p in payloads[: min(len(payloads), n)]}
    g = make_graph_store(kb.model_copy(update={"home": home}))
    t = time.perf_counter()
    items = [(f"{lab.id}~{k}", {"title": lab.title, "source": lab.source, "language": lab.language},
              label_drug_nodes(lab)) for k in range(1, copy) for lab in labels if lab.id in copied]
    for j in range(0, len(items), 5000):
        g.upsert_labels(items[j:j + 5000])
    g.close()
    out["graph_labels_s"] = round(time.perf_counter() - t, 1)
    out["labels"] = len(labels) + len(items)
    if optimize:
        t = time.perf_counter()
        store.optimize()
        out["optimize_s"] = round(time.perf_counter() - t, 1)
    out["info"] = store.info()
    out["vector_disk_mb"] = round(store.disk_bytes() / 2**20, 1)
    store.close()
    return out


def _build_child(conn: Any, *args: Any, **kw: Any) -> None:
    conn.send(build_store(*args, **kw))
    conn.close()


def build_in_child(*args: Any, **kw: Any) -> dict[str, Any]:
    """build_store in a forked child: the memory the build and HNSW optimisation take (14 GB RSS at 1M chunks) is
    given back before the ask is measured, so the page cache can hold the store as it would for a serving process."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_build_child, args=(child, *args), kwargs=kw)
    proc.start()
    child.close()
    try:
        res: dict[str, Any] = parent.recv()
    except EOFError:  # the child died before sending (out of memory, a crash in the engine)
        res = {}
    proc.join()
    if proc.exitcode or not res:
        raise RuntimeError(f"store build failed (exit code {proc.exitcode})")
    return res


def ask_in_process(kb: Settings, home: Path, questions: int, quality: bool) -> dict[str, Any]:
    env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_EMBEDDING_MODEL": kb.embedding_model_path}
    cmd = [sys.executable, "-m", "bench.ask", "--questions", str(questions)] + (["--quality"] if quality else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-3000:])
    res: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    res.pop("cpu", None)
    return res


def _p(xs: list[float], q: int) -> float:
    return round(float(np.percentile(xs, q)), 2)


def graph_latency(store: Any, n: int = 200) -> dict[str, Any]:
    """p50/p95 of the graph calls an answer makes, on random drugs/diseases of `store` (seeded)."""
    drugs = [i for i, _ in store.names("Drug")]
    diseases = [i for i, _ in store.names("Disease")]
    rng = np.random.default_rng(0)
    calls = {
        "interactions_between(2)": lambda: store.interactions_between([str(x) for x in rng.choice(drugs, 2)]),
        "interactions_of": lambda: store.interactions_of(str(rng.choice(drugs)), limit=8),
        "edges_of(Disease)": lambda: store.edges_of("Disease", str(rng.choice(diseases)),
                                                    ["RECOMMAND_DRUG", "COMMON_DRUG"], limit=15),
        "neighbourhood(depth 2)": lambda: store.neighbourhood("Drug", str(rng.choice(drugs)), depth=2, limit=50),
    }
    lat: dict[str, Any] = {}
    for name, fn in calls.items():
        for _ in range(5):
            fn()
        xs = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            xs.append((time.perf_counter() - t) * 1000)
        lat[name] = {"p50_ms": _p(xs, 50), "p95_ms": _p(xs, 95)}
    return lat


def _disk_bytes(folder: Path, name: str) -> int:
    """Bytes of a kuzu store: a directory (older kuzu) or one file plus its .wal (kuzu 0.11)."""
    total = 0
    for p in folder.glob(f"{name}*"):
        total += sum(q.stat().st_size for q in p.rglob("*") if q.is_file()) if p.is_dir() else p.stat().st_size
    return total


def graph_scale(kb: Settings, factor: int, tmp: Path) -> dict[str, Any]:
    """DDInter + the Chinese KG loaded x1 and x`factor` (node ids '~k' per replica); graph call latencies."""
    from graph.embedded import KuzuGraphStore
    from kb_loaders.model import Edge, Node
    from rag.ingest.pipeline import load_sources

    _, graphs, _ = load_sources(kb.model_copy(update={"openfda_paths": [], "spl_paths": [], "cn_insert_paths": []}))
    out: dict[str, Any] = {}
    for f in sorted({1, factor}):
        store = KuzuGraphStore(tmp / f"graph-x{f}")
        store.ensure_schema()
        t = time.perf_counter()
        for k in range(f):
            sfx = f"~{k}" if k else ""
            for g in graphs:
                for i in range(0, len(g.nodes), 50_000):
                    store.upsert_nodes([Node(n.type, n.id + sfx, n.name + sfx, n.props) for n in g.nodes[i:i + 50_000]])
                for i in range(0, len(g.edges), 100_000):
                    store.upsert_edges([Edge(e.type, e.src_type, e.src + sfx, e.dst_type, e.dst + sfx, e.props)
                                        for e in g.edges[i:i + 100_000]])
        load_s = time.perf_counter() - t
        c = store.counts()
        lat = graph_latency(store)
        t = time.perf_counter()
        store.names("Drug")
        store.names("Disease")
        store.drug_label_index()
        lat["linker_tables_s"] = round(time.perf_counter() - t, 2)
        store.close()
        out[f"x{f}"] = {"nodes": sum(c["nodes"].values()), "edges": sum(c["edges"].values()),
                        "load_s": round(load_s, 1), "disk_mb": round(_disk_bytes(tmp, f"graph-x{f}") / 2**20, 1), **lat}
        for p in tmp.glob(f"graph-x{f}*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--quality-at", type=int, default=100_000, help="0: no quality store")
    ap.add_argument("--optimize-upto", type=int, default=1_000_000, help="optimize() stores up to this size")
    ap.add_argument("--graph-scale", type=int, default=10, help="0: skip the graph part")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--kb", type=Path, default=None, help="an ingested DRUGRAG_HOME (default: settings)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    kb = get_settings()
    if a.kb:
        kb = kb.model_copy(update={"home": a.kb})
    out: dict[str, Any] = {"cpu": cpu_line(), "command": " ".join(["python -m bench.scale", *sys.argv[1:]])}
    print(json.dumps(out["cpu"]), flush=True)
    real = real_chunks(kb)
    jobs = [(int(n), True) for n in a.sizes.split(",") if n] + ([(a.quality_at, False)] if a.quality_at else [])
    for n, noise in jobs:
        key = f"{n:,}" + ("" if noise else " (exact vectors: quality)")
        with tempfile.TemporaryDirectory(prefix="drugrag-scale-") as tmp:
            home = Path(tmp)
            res = build_in_child(kb, home, n, real, noise=noise, optimize=n <= a.optimize_upto)
            res["ask"] = ask_in_process(kb, home, a.questions, quality=not noise)
        out[key] = res
        print(key, json.dumps(res), flush=True)
    if a.graph_scale:
        with tempfile.TemporaryDirectory(prefix="drugrag-graph-") as tmp:
            out["graph"] = graph_scale(kb, a.graph_scale, Path(tmp))
        print(json.dumps(out["graph"]), flush=True)
    text = json.dumps(out, indent=1, ensure_ascii=False)
    print(text)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "scale.json").write_text(text)


if __name__ == "__main__":
    main()
