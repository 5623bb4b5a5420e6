"""Chinese medical knowledge graph (QASystemOnMedicalKG data in NebulaGraph import CSVs) → nodes and edges.

Layout: `entity/<type>.csv` with `vid,name` (drug, symptom, food, check, department, cure, producer) and
`rel/<relation>.csv` with `src_id,tag_id` (a disease → the entity, by vid). Disease nodes are the relation sources
(and ACOMPANY_WITH targets). Drug ids are `names.base_name(name)` so they meet label and DDInter drugs; other ids
are the vid. A relation whose target is missing from the entity files still gets its target node (counted and
logged), so no relation is dropped; repeated edges (also those that meet through one drug base name) are kept once.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from kb_loaders.files import fingerprint, gc_paused, iter_files
from kb_loaders.model import EDGE_TYPES, Edge, GraphRecords, Node, SkippedRecord
from kb_loaders.names import base_name

log = logging.getLogger(__name__)

ENTITY_TYPES: dict[str, str] = {
    "drug": "Drug", "symptom": "Symptom", "food": "Food", "check": "Check", "department": "Department",
    "cure": "Cure", "producer": "Producer", "disease": "Disease",
}
# relation (file stem upper-cased) → (source type, target type): the Disease → x edges of the graph schema
RELATIONS: dict[str, tuple[str, str]] = {k: v for k, v in EDGE_TYPES.items() if v[0] == "Disease"}
SOURCE = "cmedkg"


def load_cmedkg(path: Path) -> GraphRecords:
    """Read `path`/entity/*.csv and `path`/rel/*.csv into typed nodes and deduplicated edges ({"source": "cmedkg"})."""
    with gc_paused():
        return _load(Path(path))


def _rows(data: bytes) -> tuple[list[str] | None, Iterator[list[str]]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
    return next(reader, None), reader


class _Graph:
    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], Node] = {}

    def add(self, ntype: str, nid: str, name: str) -> None:
        key = (ntype, nid)
        node = self.nodes.get(key)
        if node is None:
            props: dict[str, object] = {"sources": [SOURCE]}
            if ntype == "Drug":
                props["aliases"] = [name]
            self.nodes[key] = Node(ntype, nid, name, props)
        elif ntype == "Drug":
            aliases = node.props["aliases"]
            if name not in aliases:
                aliases.append(name)
                if (len(name), name) < (len(node.name), node.name):
                    node.name = name  # the shortest variant names the node


def _node_id(ntype: str, vid: str, memo: dict[str, str]) -> str:
    if ntype != "Drug":
        return vid
    nid = memo.get(vid)
    if nid is None:
        nid = memo[vid] = base_name(vid) or vid
    return nid


def _load(path: Path) -> GraphRecords:
    t0 = time.perf_counter()
    skipped: list[SkippedRecord] = []
    contents: dict[Path, bytes] = {}
    g = _Graph()
    memo: dict[str, str] = {}
    # entity type → vid → node id
    known: dict[str, dict[str, str]] = {t: {} for t in ENTITY_TYPES.values()}
    ent_files = iter_files(path / "entity", (".csv",))
    rel_files = iter_files(path / "rel", (".csv",))
    if not ent_files and not rel_files:
        skipped.append(SkippedRecord(str(path), "*", "no entity/*.csv or rel/*.csv files"))

    for f in ent_files:
        ntype = ENTITY_TYPES.get(f.stem.lower())
        data = _read(f, contents, skipped)
        if data is None:
            continue
        if ntype is None:
            skipped.append(SkippedRecord(f"entity/{f.name}", "*", f"unknown entity type {f.stem!r}"))
            continue
        header, reader = _rows(data)
        cols = [h.strip().lower() for h in header or []]
        if "vid" not in cols:
            skipped.append(SkippedRecord(f"entity/{f.name}", "*", f"no vid column (header {header})"))
            continue
        iv = cols.index("vid")
        iname = cols.index("name") if "name" in cols else iv
        for line_no, row in enumerate(reader, start=2):
            if not any(x.strip() for x in row):
                continue
            if len(row) <= max(iv, iname):
                skipped.append(SkippedRecord(f"entity/{f.name}", str(line_no), f"expected {len(cols)} fields"))
                continue
            vid = row[iv].strip()
            name = row[iname].strip() or vid
            if not vid:
                skipped.append(SkippedRecord(f"entity/{f.name}", str(line_no), "empty vid"))
                continue
            nid = _node_id(ntype, vid, memo)
            known[ntype][vid] = nid
            g.add(ntype, nid, name)

    edges: dict[tuple[str, str, str], Edge] = {}
    raw = dups = 0
    missing: dict[str, int] = {}
    for f in rel_files:
        etype = f.stem.upper()
        data = _read(f, contents, skipped)
        if data is None:
            continue
        ends = RELATIONS.get(etype)
        if ends is None:
            skipped.append(SkippedRecord(f"rel/{f.name}", "*", f"unknown relation {f.stem!r}"))
            continue
        src_type, dst_type = ends
        header, reader = _rows(data)
        cols = [h.strip().lower() for h in header or []]
        if "src_id" not in cols or "tag_id" not in cols:
            skipped.append(SkippedRecord(f"rel/{f.name}", "*", f"need src_id,tag_id columns (header {header})"))
            continue
        isrc, idst = cols.index("src_id"), cols.index("tag_id")
        targets = known[dst_type]
        for line_no, row in enumerate(reader, start=2):
            if len(row) <= max(isrc, idst):
                if any(x.strip() for x in row):
                    skipped.append(SkippedRecord(f"rel/{f.name}", str(line_no), f"expected {len(cols)} fields"))
                continue
            src, tag = row[isrc].strip(), row[idst].strip()
            if not src or not tag:
                skipped.append(SkippedRecord(f"rel/{f.name}", str(line_no), "empty src_id or tag_id"))
                continue
            raw += 1
            g.add(src_type, src, src)  # disease
            dst = targets.get(tag)
            if dst is None:
                dst = _node_id(dst_type, tag, memo)
                if dst_type != "Disease":
                    missing[etype] = missing.get(etype, 0) + 1
                targets[tag] = dst
                g.add(dst_type, dst, tag)
            key = (etype, src, dst)
            if key in edges:
                dups += 1
                continue
            edges[key] = Edge(etype, src_type, src, dst_type, dst, {"source": SOURCE})

    for etype, count in sorted(missing.items()):
        log.info("cmedkg %s: %d targets missing from the entity files; created their nodes", etype, count)
    nodes = sorted(g.nodes.values(), key=lambda n: (n.type, n.id))
    for n in nodes:
        if n.type == "Drug":
            n.props["aliases"] = sorted(n.props["aliases"])
    files = [*ent_files, *rel_files]
    log.info("cmedkg: %d nodes, %d relation rows → %d edges (%d repeats), %d skipped, %.2fs",
             len(nodes), raw, len(edges), dups, len(skipped), time.perf_counter() - t0)
    return GraphRecords(source=SOURCE, nodes=nodes, edges=list(edges.values()), skipped=skipped,
                        files=[str(f) for f in files], fingerprint=fingerprint(list(contents), contents))


def _read(f: Path, contents: dict[Path, bytes], skipped: list[SkippedRecord]) -> bytes | None:
    try:
        data = f.read_bytes()
    except OSError as e:
        skipped.append(SkippedRecord(str(f), "*", f"unreadable file: {e}"))
        return None
    contents[f] = data
    return data
