"""Keyword (sparse-only) retrieval quality of two keyword encoders on the same chunks, in one run.

    python -m bench.keywords [--encoders handwritten,bm25] [--out DIR]

Encoders: `handwritten` = the project's earlier tokenizer (rag.retrieval.sparse.tokenize: NFKC, light S-stemmer,
CJK unigrams + bigrams) with BM25 document weights computed in Python; `bm25` = qdrant-edge's built-in `Bm25`
(multilingual tokenizer: word segmentation for Chinese, Snowball stemming and stopwords for English), the encoder
rag.retrieval.sparse now uses. Both go into a qdrant-edge shard with the IDF modifier, so the score is BM25.

Every chunk of the bundled labels (openFDA, SPL, 中文说明书) is indexed. Measures:
  dev_section@1/@5   label_qa_dev questions, search filtered to the gold label(s) (as the retriever does): is a
                     chunk of the gold section first / in the top 5?
  dev_label@5        the same questions unfiltered: is a chunk of a gold label in the top 5?
  zh_name_label@5    for every Chinese insert and section, "<药品名称>的<section title>" unfiltered: that insert?
  zh_name_section@1  the same filtered to the insert: is its top chunk from that section?
  zh_fragment@5      an 8-character fragment of a Chinese chunk (seeded), unfiltered: that chunk in the top 5?
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import cpu_line
from rag.core.settings import get_settings
from rag.stores.base import ChunkPoint, SearchFilter, SparseVec
from rag.stores.edge import EdgeVectorStore

K1, B, AVGDL = 1.2, 0.75, 150.0


def handwritten_doc(text: str) -> SparseVec:
    from rag.retrieval.sparse import token_index, tokenize

    counts: dict[int, int] = {}
    for tok in tokenize(text):
        i = token_index(tok)
        counts[i] = counts.get(i, 0) + 1
    dl = sum(1 for t in tokenize(text) if not (len(t) == 2 and all("\u3400" <= c <= "\u9fff" for c in t)))
    norm = K1 * (1 - B + B * dl / AVGDL)
    idx = sorted(counts)
    return SparseVec(idx, [counts[i] * (K1 + 1) / (counts[i] + norm) for i in idx])


def handwritten_query(text: str) -> SparseVec:
    from rag.retrieval.sparse import token_index, tokenize

    idx = sorted({token_index(t) for t in tokenize(text)})
    return SparseVec(idx, [1.0] * len(idx))


def encoders() -> dict[str, tuple[Callable[[str], SparseVec], Callable[[str], SparseVec]]]:
    from rag.retrieval.sparse import sparse_doc, sparse_query

    return {"handwritten": (handwritten_doc, handwritten_query), "bm25": (sparse_doc, sparse_query)}


def corpus() -> tuple[list[dict[str, Any]], list[Any]]:
    from rag.ingest.pipeline import label_points, load_sources

    s = get_settings().model_copy(update={"ddinter_paths": [], "cmedkg_path": ""})
    labels, _, _ = load_sources(s)
    payloads: list[dict[str, Any]] = []
    for lab in labels:
        payloads += label_points(lab, s)[0]
    return payloads, labels


def probes(payloads: list[dict[str, Any]], labels: list[Any], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    from kb_loaders.sections import SECTION_TITLES, openfda_section

    s = get_settings()
    dev = []
    with (s.data_dir / "eval" / "label_qa_dev.jsonl").open(encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            exp = q.get("expected") or {}
            if exp.get("set_ids") and exp.get("section"):
                dev.append({"q": q["question"], "labels": exp["set_ids"], "lang": q.get("lang"),
                            "section": openfda_section(exp["section"]) or exp["section"]})
    zh_name, zh_frag = [], []
    rnd = random.Random(seed)
    for lab in labels:
        if lab.language != "zh":
            continue
        name = (lab.generic_names or lab.brand_names or [lab.title])[0]
        for sec in {x.key for x in lab.sections}:
            title = SECTION_TITLES.get(sec, {}).get("zh")
            if title:
                zh_name.append({"q": f"{name}的{title}", "label": lab.id, "section": sec})
    for p in payloads:
        t = p["text"]
        if p["language"] == "zh" and len(t) >= 16:
            i = rnd.randrange(0, len(t) - 8)
            zh_frag.append({"q": t[i:i + 8], "chunk": p["chunk_id"]})
    return {"dev": dev, "zh_name": zh_name, "zh_fragment": zh_frag}


def evaluate(store: EdgeVectorStore, query: Callable[[str], SparseVec], pr: dict[str, list[dict[str, Any]]]
             ) -> dict[str, float]:
    m: dict[str, list[float]] = {}
    for d in pr["dev"]:
        qv = query(d["q"])
        hits = store.search_sparse(qv, 5, SearchFilter(label_ids=d["labels"]))
        secs = [h.payload["section"] for h in hits]
        m.setdefault("dev_section@1", []).append(float(secs[:1] == [d["section"]]))
        m.setdefault("dev_section@5", []).append(float(d["section"] in secs))
        free = store.search_sparse(qv, 5)
        m.setdefault("dev_label@5", []).append(float(any(h.payload["label_id"] in d["labels"] for h in free)))
    for d in pr["zh_name"]:
        qv = query(d["q"])
        free = store.search_sparse(qv, 5)
        m.setdefault("zh_name_label@5", []).append(float(any(h.payload["label_id"] == d["label"] for h in free)))
        top = store.search_sparse(qv, 1, SearchFilter(label_ids=[d["label"]]))
        m.setdefault("zh_name_section@1", []).append(float(bool(top) and top[0].payload["section"] == d["section"]))
    for d in pr["zh_fragment"]:
        free = store.search_sparse(query(d["q"]), 5)
        m.setdefault("zh_fragment@5", []).append(float(any(h.payload["chunk_id"] == d["chunk"] for h in free)))
    return {k: round(float(np.mean(v)), 4) for k, v in m.items()} | {f"n_{k}": len(v) for k, v in pr.items()}


def run(names: list[str]) -> dict[str, Any]:
    payloads, labels = corpus()
    pr = probes(payloads, labels)
    out: dict[str, Any] = {"cpu": cpu_line(), "chunks": len(payloads)}
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((len(payloads), 4)).astype(np.float32)
    encs = encoders()
    for name in names:
        doc, query = encs[name]
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeVectorStore(Path(tmp) / "v")
            store.ensure_collection(4)
            t = time.perf_counter()
            points = [ChunkPoint(str(uuid.uuid5(uuid.NAMESPACE_URL, p["chunk_id"])), dense[i].tolist(),
                                 doc(p["text"]), p) for i, p in enumerate(payloads)]
            enc_s = time.perf_counter() - t
            store.upsert(points)
            t = time.perf_counter()
            res = evaluate(store, query, pr)
            res["encode_docs_s"] = round(enc_s, 2)
            res["eval_s"] = round(time.perf_counter() - t, 1)
            store.close()
        out[name] = res
        print(name, json.dumps(res), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default="handwritten,bm25")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = run(a.encoders.split(","))
    print(json.dumps(out, indent=1, ensure_ascii=False))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "keywords.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
