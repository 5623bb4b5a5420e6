"""DDInter drug–drug interactions (CSV `DDInterID_A,Drug_A,DDInterID_B,Drug_B,Level`, one file per ATC letter) →
Drug nodes and INTERACTS_WITH edges.

Drug node ids are `names.base_name(name)`, so DDInter drugs meet label and Chinese-KG drugs at one node. Route
variants DDInter keeps apart ("Diclofenac", "Diclofenac (topical)", "Diclofenac (ophthalmic)") share a base name and
so one node; their pairs merge into one edge. A pair seen more than once (in several files, or through such merged
variants) keeps the most severe level (Major > Moderate > Minor > Unknown) and `conflict` says the levels disagreed.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from kb_loaders.files import fingerprint, gc_paused, iter_files
from kb_loaders.model import Edge, GraphRecords, Node, SkippedRecord
from kb_loaders.names import base_name

log = logging.getLogger(__name__)

LEVELS: tuple[str, ...] = ("Major", "Moderate", "Minor", "Unknown")  # most severe first
SEVERITY: dict[str, int] = {lvl: len(LEVELS) - i for i, lvl in enumerate(LEVELS)}  # Major 4 … Unknown 1
COLUMNS = ("DDInterID_A", "Drug_A", "DDInterID_B", "Drug_B", "Level")


def ddinter_files(paths: Sequence[Path]) -> list[Path]:
    """Directories → their ddinter*.csv files (sorted); files are taken as given. Duplicates removed."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        found = iter_files(p, (".csv",), prefix="ddinter") if p.is_dir() else [p]
        for f in found:
            if f not in out:
                out.append(f)
    return out


def load_ddinter(paths: Sequence[Path]) -> GraphRecords:
    """Read DDInter CSVs (directories → their ddinter*.csv) into Drug nodes and one INTERACTS_WITH edge per
    unordered pair of drug ids (src < dst). Edge props: level (most severe seen), levels_seen (distinct, most severe
    first), conflict (more than one level seen), sources (file names, sorted), source "ddinter"."""
    with gc_paused():
        return _load(paths)


def _load(paths: Sequence[Path]) -> GraphRecords:
    t0 = time.perf_counter()
    files = ddinter_files(paths)
    skipped: list[SkippedRecord] = []
    contents: dict[Path, bytes] = {}  # bytes of each file read, for the fingerprint
    ids_of: dict[str, str] = {}  # name → base-name node id (memo)
    names: dict[str, dict[str, str]] = {}  # node id → {DDInter name: DDInter id}
    # (lo, hi) → bit masks of the levels seen (bit = severity) and of the files (bit = file index); plain ints
    # rather than sets keep 160k pairs cheap for the garbage collector
    level_mask: dict[tuple[str, str], int] = {}
    file_mask: dict[tuple[str, str], int] = {}
    rows_read = 0

    def node_id(name: str) -> str:
        nid = ids_of.get(name)
        if nid is None:
            nid = ids_of[name] = base_name(name)
        return nid

    read: list[Path] = []
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as e:
            skipped.append(SkippedRecord(f.name, "*", f"unreadable file: {e}"))
            continue
        contents[f] = data
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
        header = next(reader, None)
        if header is None:
            skipped.append(SkippedRecord(f.name, "*", "empty file"))
            continue
        col = {h.strip(): i for i, h in enumerate(header)}
        missing = [c for c in COLUMNS if c not in col]
        if missing:
            skipped.append(SkippedRecord(f.name, "*", f"missing columns {missing} (header {header})"))
            continue
        ia, na, ib, nb, il = (col[c] for c in COLUMNS)
        width = len(header)
        fname = f.name
        fbit = 1 << len(read)
        read.append(f)
        for line_no, row in enumerate(reader, start=2):
            rows_read += 1
            if len(row) != width:
                if not any(x.strip() for x in row):
                    continue  # blank line
                skipped.append(SkippedRecord(fname, str(line_no), f"expected {width} fields, got {len(row)}"))
                continue
            drug_a, drug_b = row[na].strip(), row[nb].strip()
            level = row[il].strip().capitalize()
            if not drug_a or not drug_b:
                skipped.append(SkippedRecord(fname, str(line_no), "missing drug name"))
                continue
            sev = SEVERITY.get(level)
            if sev is None:
                skipped.append(SkippedRecord(fname, str(line_no), f"unknown level {row[il]!r}"))
                continue
            a, b = node_id(drug_a), node_id(drug_b)
            if not a or not b:
                skipped.append(SkippedRecord(fname, str(line_no), "drug name normalises to nothing"))
                continue
            if a == b:
                skipped.append(SkippedRecord(fname, str(line_no),
                                             f"self-interaction: {drug_a!r} and {drug_b!r} are both drug {a!r}"))
                continue
            names.setdefault(a, {}).setdefault(drug_a, row[ia].strip())
            names.setdefault(b, {}).setdefault(drug_b, row[ib].strip())
            key = (a, b) if a < b else (b, a)
            level_mask[key] = level_mask.get(key, 0) | (1 << sev)
            file_mask[key] = file_mask.get(key, 0) | fbit

    nodes = []
    for nid in sorted(names):
        variants = names[nid]
        primary = min(variants, key=lambda n: (len(n), n))  # "Diclofenac" before "Diclofenac (topical)"
        nodes.append(Node("Drug", nid, primary, {"ddinter_id": variants[primary], "aliases": sorted(variants),
                                                 "sources": ["ddinter"]}))
    # masks → lists, computed once per distinct mask
    levels_of = {m: [lvl for lvl in LEVELS if m >> SEVERITY[lvl] & 1] for m in set(level_mask.values())}
    names_of = {m: sorted(f.name for i, f in enumerate(read) if m >> i & 1) for m in set(file_mask.values())}
    edges = []
    n_conflict = 0
    for key in sorted(level_mask):
        levels = levels_of[level_mask[key]]
        conflict = len(levels) > 1
        n_conflict += conflict
        edges.append(Edge("INTERACTS_WITH", "Drug", key[0], "Drug", key[1], {
            "level": levels[0], "sources": list(names_of[file_mask[key]]), "conflict": conflict,
            "levels_seen": list(levels), "source": "ddinter"}))
    fp = fingerprint(list(contents), contents)
    log.info("DDInter: %d files, %d rows → %d drugs, %d interaction pairs (%d with conflicting levels), "
             "%d rows skipped, %.2fs", len(files), rows_read, len(nodes), len(edges), n_conflict, len(skipped),
             time.perf_counter() - t0)
    return GraphRecords(source="ddinter", nodes=nodes, edges=edges, skipped=skipped,
                        files=[str(f) for f in files], fingerprint=fp)
