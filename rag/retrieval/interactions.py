"""Drug–drug interactions for the drugs a question names: every pair checked against the graph (DDInter edges, most
severe first), and for each pair the label sentences of one drug that name the other.

A pair with no edge is reported as "not recorded in the knowledge base", never as safe; when a label names the other
drug anyway, that sentence is cited so the reader sees what the label says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from graph.store import GEdge, GraphStore
from kb_loaders.names import norm_name
from rag.core.types import Source
from rag.retrieval.linking import Link
from rag.retrieval.sparse import sparse_query
from rag.stores.base import Hit, SearchFilter, VectorStore

SEVERITY_ORDER = {"Major": 0, "Moderate": 1, "Minor": 2, "Unknown": 3}
LABEL_SECTIONS = ["interactions", "warnings", "contraindications", "boxed_warning"]


@dataclass(slots=True)
class PairRecord:
    """One pair of the question's drugs: its most severe recorded level (None: no record) and its sources."""

    names: tuple[str, str]  # display names of the two drugs
    asked: tuple[str, str]  # the question's own words for them
    ids: tuple[str, str]  # graph ids (the first id of each mention)
    level: str | None
    edges: list[Source] = field(default_factory=list)  # the INTERACTS_WITH edges of the pair
    label_sources: list[Source] = field(default_factory=list)  # label sentences of one naming the other


def level_of(e: GEdge) -> str:
    return str((e.get("props") or {}).get("level", "Unknown"))


def check_pairs(g: GraphStore, v: VectorStore, groups: list[list[Link]], graph_source: Callable[[GEdge], Source],
                label_source: Callable[[Hit], Source]) -> list[PairRecord]:
    """Every pair among the drug groups (a group = the links of one mention), with its edges and label sentences."""
    ids = [lk.id for grp in groups for lk in grp]
    owner = {lk.id: gi for gi, grp in enumerate(groups) for lk in grp}
    edges = [e for e in g.interactions_between(ids) if owner.get(e["src"]) != owner.get(e["dst"])]
    edges.sort(key=lambda e: SEVERITY_ORDER.get(level_of(e), 4))
    by_pair: dict[frozenset[int], list[GEdge]] = {}
    for e in edges:
        by_pair.setdefault(frozenset((owner[e["src"]], owner[e["dst"]])), []).append(e)
    mentions = [_mention_hits(v, groups, gi) for gi in range(len(groups))]
    out: list[PairRecord] = []
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            pe = by_pair.get(frozenset((a, b)), [])
            rec = PairRecord(names=(groups[a][0].name, groups[b][0].name),
                             asked=(groups[a][0].matched, groups[b][0].matched),
                             ids=(groups[a][0].id, groups[b][0].id), level=level_of(pe[0]) if pe else None,
                             edges=[graph_source(e) for e in pe])
            seen: set[str] = set()
            for hit in mentions[a].get(b, []) + mentions[b].get(a, []):
                if hit.id not in seen:
                    seen.add(hit.id)
                    rec.label_sources.append(label_source(hit))
            out.append(rec)
    return out


def _mention_hits(v: VectorStore, groups: list[list[Link]], gi: int, per_other: int = 2) -> dict[int, list[Hit]]:
    """Passages of group gi's labels (interaction-related sections) that name each other group's drug."""
    label_ids = list(dict.fromkeys(i for lk in groups[gi] for i in lk.label_ids))
    out: dict[int, list[Hit]] = {}
    if not label_ids:
        return out
    for gj, other in enumerate(groups):
        if gj == gi:
            continue
        names = {norm_name(lk.name) for lk in other} | {lk.id for lk in other} | {norm_name(lk.matched) for lk in other}
        names = {n for n in names if len(n) >= 3}
        hits = v.search_sparse(sparse_query(" ".join(sorted(names))), 10,
                               SearchFilter(label_ids=label_ids, sections=LABEL_SECTIONS))
        # compared normalised like the names ("St. John's Wort" is "st john s wort")
        out[gj] = [h for h in hits if any(n in norm_name(h.payload["text"]) for n in names)][:per_other]
    return out


def interactions_of_one(g: GraphStore, group: list[Link], graph_source: Callable[[GEdge], Source],
                        limit: int = 8) -> list[Source]:
    """"Which drugs interact with X?": the drug's recorded interactions, most severe first."""
    edges = [e for lk in group for e in g.interactions_of(lk.id, limit=limit)]
    edges.sort(key=lambda e: SEVERITY_ORDER.get(level_of(e), 4))
    return [graph_source(e) for e in edges[:limit]]
