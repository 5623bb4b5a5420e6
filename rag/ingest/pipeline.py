"""Ingestion: sources → labels and graph records → chunks → embeddings → vector store + graph store.

Idempotent and restartable:
- Graph sources (DDInter, the Chinese KG) carry a fingerprint of their files; a source whose fingerprint is
  recorded in the graph is skipped. Otherwise its old edges are deleted and it is loaded again; the fingerprint is
  written last, so a run killed half-way loads that source again next time, with the same end counts.
- Labels carry a content hash. A label is done when the vector store holds its chunks with that hash AND the graph
  holds its Label node with that hash (vector first, graph last). Anything else (new, changed version, half-written
  by an interrupted run) is deleted from the vector store and written again. Point ids are deterministic.

Work is overlapped where it pays (`ingest_overlap`, measured in README): the embedding model loads (or, the first
time on a machine, is calibrated) in a thread while the sources are read, and the graph sources (DDInter, the
Chinese KG) are written in a thread while label chunks are embedded. The graph store serialises the two writers
per transaction, and node upserts merge, so the end state is the same in either order. Identical chunk texts
(the same section of the same drug from several manufacturers) are embedded once.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from graph.store import GraphStore
from kb_loaders.model import GraphRecords, Label, LoadResult, Node, SkippedRecord
from kb_loaders.names import NAMES_VERSION, base_name, norm_name
from kb_loaders.sections import SECTION_TITLES
from rag.core.settings import Settings
from rag.ingest.chunking import chunk_section
from rag.ingest.report import IngestReport, dir_bytes, peak_rss_mb, stage
from rag.retrieval.embedding import Embedder
from rag.retrieval.lexicon import label_words, write_lexicon
from rag.retrieval.sparse import SPARSE_VERSION, sparse_doc
from rag.stores.base import ChunkPoint, VectorStore

log = logging.getLogger(__name__)
POINT_NS = uuid.UUID("6f1c3a52-8d0e-4c1b-9a57-2f4e8f0b7d11")


def load_sources(s: Settings) -> tuple[list[Label], list[GraphRecords], list[SkippedRecord]]:
    """Read every configured source; a malformed record is skipped and reported, never fatal."""
    from kb_loaders.cmedkg import load_cmedkg
    from kb_loaders.cn_inserts import load_cn_inserts
    from kb_loaders.ddinter import load_ddinter
    from kb_loaders.openfda import load_openfda
    from kb_loaders.spl import load_spl

    labels: list[Label] = []
    skipped: list[SkippedRecord] = []
    for loader, paths in (
        (load_openfda, s.openfda_paths),
        (load_spl, s.spl_paths),
        (load_cn_inserts, s.cn_insert_paths),
    ):
        for p in paths:
            path = s.resolve_data(p)
            if path is None:
                continue
            if not path.exists():
                skipped.append(SkippedRecord(str(path), "*", "source path does not exist"))
                continue
            res: LoadResult = loader(path, limit=s.limit_labels)
            labels.extend(res.labels)
            skipped.extend(res.skipped)
    graphs: list[GraphRecords] = []
    dd = [x for x in (s.resolve_data(p) for p in s.ddinter_paths) if x is not None]
    if dd:
        missing = [p for p in dd if not p.exists()]
        skipped.extend(SkippedRecord(str(p), "*", "source path does not exist") for p in missing)
        if len(missing) < len(dd):
            graphs.append(load_ddinter([p for p in dd if p.exists()]))
    ck = s.resolve_data(s.cmedkg_path)
    if ck is not None:
        if ck.exists():
            graphs.append(load_cmedkg(ck))
        else:
            skipped.append(SkippedRecord(str(ck), "*", "source path does not exist"))
    for g in graphs:
        skipped.extend(g.skipped)
    # one id, one label: a later duplicate id (e.g. the same set_id in two files) is reported, not merged
    seen: dict[str, Label] = {}
    for lab in labels:
        if lab.id in seen:
            skipped.append(
                SkippedRecord(lab.source_file, lab.id, f"duplicate label id (also in {seen[lab.id].source_file})")
            )
            continue
        seen[lab.id] = lab
    return list(seen.values()), graphs, skipped


def label_drug_ids(label: Label) -> list[str]:
    return sorted({base_name(n) for n in label.all_names() if base_name(n)})


def label_drug_nodes(label: Label) -> list[Node]:
    by_id: dict[str, list[str]] = {}
    for n in label.all_names():
        b = base_name(n)
        if b:
            by_id.setdefault(b, []).append(n)
    return [
        Node("Drug", i, names[0], {"aliases": sorted(set(names)), "sources": [label.source]})
        for i, names in by_id.items()
    ]


def embed_text(label: Label, section_key: str, text: str) -> str:
    """What the dense model sees: drug name and section title before the chunk (the stored text stays exact)."""
    name = (label.generic_names or label.brand_names or [label.title])[0]
    title = SECTION_TITLES.get(section_key, {}).get(label.language, section_key)
    return f"{name} | {title}: {text.strip()}"


def index_hash(label: Label, s: Settings) -> str:
    """What a label's stored chunks depend on: its content, the name rules, chunking and the embedding model.
    Any change re-indexes the label on the next ingest."""
    key = "|".join(
        [
            label.content_hash(),
            NAMES_VERSION,
            str(s.chunk_chars),
            Path(s.embedding_model_path).name,
            str(s.embedding_max_seq_length),
            str(s.embedding_passage_max_tokens),
            SPARSE_VERSION,
        ]
    )
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def label_points(label: Label, s: Settings) -> tuple[list[dict[str, Any]], list[str]]:
    """Chunk payloads of a label and the texts to embed for them (same order)."""
    h = index_hash(label, s)
    names = sorted({norm_name(n) for n in label.all_names() if norm_name(n)})
    drug_ids = label_drug_ids(label)
    generic_ids = sorted({base_name(n) for n in (label.generic_names or label.substance_names) if base_name(n)})
    payloads: list[dict[str, Any]] = []
    texts: list[str] = []
    for si, sec in enumerate(label.sections):
        chunks = chunk_section(sec.text, s.chunk_chars)
        for c in chunks:
            payloads.append(
                {
                    "chunk_id": str(uuid.uuid5(POINT_NS, f"{label.id}|{si}|{c.index}")),
                    "label_id": label.id,
                    "label_hash": h,
                    "version": label.version,
                    "effective_date": label.effective_date,
                    "title": label.title,
                    "language": label.language,
                    "source": label.source,
                    "source_file": label.source_file,
                    "names": names,
                    "drug_ids": drug_ids,
                    "generic_ids": generic_ids,
                    "section": sec.key,
                    "section_name": sec.name,
                    "section_idx": si,
                    "chunk_index": c.index,
                    "n_chunks": len(chunks),
                    "start": c.start,
                    "end": c.end,
                    "text": c.text,
                }
            )
            texts.append(embed_text(label, sec.key, c.text))
    return payloads, texts


def _graph_total(gstore: GraphStore) -> tuple[int, int, dict[str, dict[str, int]]]:
    c = gstore.counts()
    return sum(c["nodes"].values()), sum(c["edges"].values()), c


def ingest_graph(graphs: Sequence[GraphRecords], gstore: GraphStore, report: IngestReport,
                 progress: bool = True) -> None:
    for g in graphs:
        known = gstore.get_source_fingerprint(g.source)
        fingerprint = f"{g.fingerprint}:names{NAMES_VERSION}"  # node ids derive from the name rules too
        if known and known == fingerprint:
            report.sources[g.source] = {"status": "unchanged", "nodes": len(g.nodes), "edges": len(g.edges)}
            log.info("graph source %s unchanged (fingerprint %s): skipped", g.source, known)
            continue
        removed = gstore.delete_source(g.source)
        n_new = 0
        for i in tqdm(range(0, len(g.nodes), 50_000), desc=f"graph nodes {g.source}", unit="batch", leave=False,
                      disable=not progress):
            n_new += gstore.upsert_nodes(g.nodes[i : i + 50_000])
        e_new = 0
        for i in tqdm(range(0, len(g.edges), 100_000), desc=f"graph edges {g.source}", unit="batch", leave=False,
                      disable=not progress):
            e_new += gstore.upsert_edges(g.edges[i : i + 100_000])
        gstore.set_source_fingerprint(g.source, fingerprint)
        report.sources[g.source] = {
            "status": "loaded",
            "nodes": len(g.nodes),
            "edges": len(g.edges),
            "replaced_edges": removed,
        }
        log.info(
            "graph source %s: %d nodes (%d new), %d edges (%d new, %d old removed)",
            g.source,
            len(g.nodes),
            n_new,
            len(g.edges),
            e_new,
            removed,
        )


def _background(pool: ThreadPoolExecutor | None, fn: Callable[[], Any]) -> Future[Any]:
    """fn() in the pool, or at once in this thread when there is no pool (overlap off)."""
    if pool is not None:
        return pool.submit(fn)
    fut: Future[Any] = Future()
    try:
        fut.set_result(fn())
    except BaseException as e:  # noqa: BLE001 - re-raised by fut.result(), as a pool would
        fut.set_exception(e)
    return fut


def run_ingest(
    s: Settings, vstore: VectorStore, gstore: GraphStore, embedder: Embedder, progress: bool = True
) -> IngestReport:
    report = IngestReport()
    t_all = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest") if s.ingest_overlap else None
    try:
        return _run_ingest(s, vstore, gstore, embedder, progress, report, t_all, pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _load_model(embedder: Embedder, report: IngestReport) -> int:
    with stage(report, "model_load"):
        return embedder.dim  # loads the model (lazily, only now that something may need embedding)


def _run_ingest(s: Settings, vstore: VectorStore, gstore: GraphStore, embedder: Embedder, progress: bool,
                report: IngestReport, t_all: float, pool: ThreadPoolExecutor | None) -> IngestReport:
    model_job = _background(pool, lambda: _load_model(embedder, report))
    with stage(report, "load"):
        labels, graphs, skipped = load_sources(s)
    report.skipped = [k.as_dict() for k in skipped]
    for sk in skipped:
        log.warning("skipped %s record %s: %s", sk.file, sk.record, sk.reason)

    gstore.ensure_schema()
    n0, e0, _ = _graph_total(gstore)
    gh = gstore.label_hashes()  # before the graph sources change the graph: Label nodes are not theirs

    def graph_stage() -> None:
        with stage(report, "graph"):
            ingest_graph(graphs, gstore, report, progress)

    graph_job = _background(pool, graph_stage)
    dim = model_job.result()
    with stage(report, "diff"):
        vstore.ensure_collection(dim)
        vh = vstore.label_hashes()
        todo = [lab for lab in labels if not (vh.get(lab.id) == gh.get(lab.id) == index_hash(lab, s))]
        report.unchanged_labels = len(labels) - len(todo)
        report.replaced_labels = sum(1 for lab in todo if lab.id in vh or lab.id in gh)
    log.info(
        "%d labels: %d unchanged, %d to write (%d replacing an older version or a partial write)",
        len(labels),
        report.unchanged_labels,
        len(todo),
        report.replaced_labels,
    )

    c0 = vstore.count()
    stats: dict[str, int] = {}
    embed_s = 0.0
    n_embedded = 0
    bar = tqdm(total=len(todo), desc="labels", unit="label", disable=not progress)
    batch_n = 64
    for i in range(0, len(todo), batch_n):
        batch = todo[i : i + batch_n]
        with stage(report, "chunk"):
            per_label = [label_points(lab, s) for lab in batch]
        texts = [t for _, ts in per_label for t in ts]
        with stage(report, "embed"):
            t = time.perf_counter()
            dense = embedder.embed_passages(texts)
            embed_s += time.perf_counter() - t
            n_embedded += len(texts)
            for key, n in (getattr(embedder, "last_stats", None) or {}).items():
                stats[key] = stats.get(key, 0) + n
        with stage(report, "vector_write"):
            k: int = 0
            points: list[ChunkPoint] = []
            for lab, (payloads, _) in zip(batch, per_label, strict=True):
                if lab.id in vh:
                    vstore.delete_label(lab.id)
                for p in payloads:
                    points.append(ChunkPoint(p["chunk_id"], dense[k].tolist(), sparse_doc(p["text"]), p))
                    k += 1
            for j in range(0, len(points), s.upsert_batch_size):
                vstore.upsert(points[j : j + s.upsert_batch_size])
        with stage(report, "label_graph_write"):
            items = []
            for lab in batch:
                props = {
                    "title": lab.title,
                    "version": lab.version,
                    "language": lab.language,
                    "source": lab.source,
                    "source_file": lab.source_file,
                    "content_hash": index_hash(lab, s),
                    "effective_date": lab.effective_date,
                    "sections": len(lab.sections),
                }
                items.append((lab.id, props, label_drug_nodes(lab)))
            gstore.upsert_labels(items)
        bar.update(len(batch))
    bar.close()
    if n_embedded and embed_s > 0:
        report.embed_chunks_per_s = round(n_embedded / embed_s, 1)
    with stage(report, "graph_wait"):
        graph_job.result()  # the graph sources' thread (if any) is done before counting
    report.embedding = {"backend": getattr(embedder, "backend", getattr(embedder, "name", "?")), **stats,
                        "calibration": getattr(embedder, "calibration", None)}

    with stage(report, "finalize"):
        report.labels = len(vstore.label_hashes())
        report.chunks = vstore.count()
        report.nodes, report.edges, report.graph_counts = _graph_total(gstore)
        report.added = {
            "labels": len(todo) - report.replaced_labels,
            "chunks": max(0, report.chunks - c0),
            "nodes": report.nodes - n0,
            "edges": report.edges - e0,
        }
        report.labels_by_language = {}
        report.sections_by_key = {}
        for lab in labels:
            src = report.sources.setdefault(lab.source, {"status": "loaded", "labels": 0})
            src["labels"] += 1
            report.labels_by_language[lab.language] = report.labels_by_language.get(lab.language, 0) + 1
            for sec in lab.sections:
                report.sections_by_key[sec.key] = report.sections_by_key.get(sec.key, 0) + 1
        write_lexicon(s.home, label_words(sec.text for lab in labels for sec in lab.sections))
        report.store_bytes = {
            "vector": vstore.disk_bytes(),
            "graph": dir_bytes(s.kuzu_path) if s.graph_backend == "kuzu" else None,
        }
    report.seconds["total"] = round(time.perf_counter() - t_all, 3)
    report.peak_rss_mb = peak_rss_mb()
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def delete_label(label_id: str, vstore: VectorStore, gstore: GraphStore) -> dict[str, Any]:
    chunks = vstore.delete_label(label_id)
    node = gstore.delete_label(label_id)
    return {"label_id": label_id, "deleted_chunks": chunks, "deleted_label_node": node}
