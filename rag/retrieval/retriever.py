"""Retrieval: link entities → route → graph facts first → dense + keyword (RRF-fused in the store) label passages.

Returns an Evidence whose numbered sources are what an answer builder may cite. Label passages carry the whole
stored section text, so quotes can be checked as exact spans.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from graph.store import GEdge, GraphStore
from kb_loaders.names import norm_name
from rag.answer.schema import Turn
from rag.core.text import detect_language
from rag.core.types import Evidence, Source
from rag.retrieval.embedding import Embedder
from rag.retrieval.linking import _LATIN_CJK, EntityLinker, Link, LinkResult
from rag.retrieval.routing import Route, route
from rag.retrieval.sparse import sparse_query
from rag.stores.base import Hit, SearchFilter, VectorStore

log = logging.getLogger(__name__)
SEVERITY_ORDER = {"Major": 0, "Moderate": 1, "Minor": 2, "Unknown": 3}
GRAPH_TITLES = {"ddinter": "DDInter drug–drug interactions", "cmedkg": "Chinese medical knowledge graph (CMeKG)"}


def render_edge(e: GEdge) -> str:
    """The text a graph citation quotes: a stable, readable rendering of one edge."""
    props = e.get("props") or {}
    if e["type"] == "INTERACTS_WITH":
        level, source = props.get("level", "Unknown"), props.get("source", "ddinter")
        return f"{e['src_name']} —INTERACTS_WITH {{level: {level}}}— {e['dst_name']} (source: {source})"
    return f"{e['src_name']} —{e['type']}→ {e['dst_name']} (source: {props.get('source', e.get('source', ''))})"


@dataclass
class Retrieval:
    evidence: Evidence
    links: LinkResult
    route: Route
    pairs_without_edge: list[tuple[str, str]] = field(default_factory=list)
    pairs_with_edge: list[tuple[str, str, str]] = field(default_factory=list)  # (drug a, drug b, most severe level)


class Retriever:
    def __init__(
        self,
        vstore: VectorStore,
        gstore: GraphStore,
        embedder: Embedder,
        linker: EntityLinker,
        top_k: int = 8,
        prefetch: int = 50,
    ) -> None:
        self.v = vstore
        self.g = gstore
        self.embedder = embedder
        self.linker = linker
        self.top_k = top_k
        self.prefetch = prefetch
        self._sections: OrderedDict[tuple[str, str], dict[int, str]] = OrderedDict()

    # -- section text (rebuilt from the chunks that tile it) ------------------------------------------------------
    def section_texts(self, label_id: str, section: str) -> dict[int, str]:
        key = (label_id, section)
        if key in self._sections:
            self._sections.move_to_end(key)
            return self._sections[key]
        parts: dict[int, list[tuple[int, str]]] = {}
        for p in self.v.scroll(SearchFilter(label_ids=[label_id], sections=[section])):
            parts.setdefault(int(p.get("section_idx", 0)), []).append((int(p["chunk_index"]), p["text"]))
        out = {si: "".join(t for _, t in sorted(chunks)) for si, chunks in parts.items()}
        self._sections[key] = out
        if len(self._sections) > 512:
            self._sections.popitem(last=False)
        return out

    def label_source(self, hit: Hit) -> Source:
        p = hit.payload
        full = self.section_texts(p["label_id"], p["section"]).get(int(p.get("section_idx", 0)), p["text"])
        return Source(
            sid="",
            kind="label",
            doc_id=p["label_id"],
            title=p.get("title", ""),
            section=p["section"],
            section_name=p.get("section_name"),
            version=p.get("version"),
            text=p["text"],
            offset=int(p["start"]),
            section_text=full,
            score=hit.score,
            language=p.get("language", "en"),
            drug_ids=list(p.get("drug_ids", [])),
        )

    def graph_source(self, edge: GEdge) -> Source:
        text = render_edge(edge)
        src = (edge.get("props") or {}).get("source", "")
        return Source(
            sid="",
            kind="graph",
            doc_id=edge["id"],
            title=GRAPH_TITLES.get(src, src or "knowledge graph"),
            section=edge["type"],
            section_name=edge["type"],
            version=None,
            text=text,
            offset=0,
            section_text=text,
            score=1.0,
            language="en",
            edge=edge,
        )

    # -- the main entry -------------------------------------------------------------------------------------------
    def retrieve(self, question: str, history: Sequence[Turn] = ()) -> Retrieval:
        lang: Literal["en", "zh"] = "zh" if detect_language(question) == "zh" else "en"
        lr = self.linker.link(question)
        if not lr.links and history:  # "and the dose?" after a question about warfarin: carry the entities over
            for turn in reversed(history):
                if turn.role == "user":
                    prev = self.linker.link(turn.content)
                    if prev.links:
                        lr = LinkResult(prev.links, lr.unlinked, lr.suggestions)
                        break
        groups = group_by_mention(lr.drugs)
        rt = route(mask_mentions(question, lr), n_drugs=len(groups), n_diseases=len(lr.diseases))
        ev = Evidence(
            question=question,
            language=lang,
            intent=rt.intent,
            sections=rt.sections,
            linked=[lk.entity() for lk in lr.links],
            history_text=" ".join(t.content for t in history if t.role == "user"),
        )
        res = Retrieval(ev, lr, rt)
        if rt.intent == "prescription":
            return res
        sources: list[Source] = []
        qvec: list[float] | None = None

        def qv() -> list[float]:
            nonlocal qvec
            if qvec is None:
                qvec = self.embedder.embed_queries([question])[0].tolist()
            return qvec

        if rt.intent == "interaction" and len(groups) >= 2:
            sources += self.interaction_sources(groups, res)
        if rt.intent == "interaction" and len(groups) == 1:  # "which drugs interact with X?": graph first
            edges = [e for lk in groups[0] for e in self.g.interactions_of(lk.id, limit=8)]
            edges.sort(key=lambda e: SEVERITY_ORDER.get((e.get("props") or {}).get("level", "Unknown"), 4))
            sources += [self.graph_source(e) for e in edges[:8]]
        labelled = [lk for lk in lr.drugs if lk.label_ids]
        other_labels: list[str] = []
        if labelled:
            first_mention = labelled[0].matched
            main = [lk for lk in labelled if lk.matched == first_mention] if rt.intent != "interaction" else labelled
            found, other_labels = self._label_sources(question, qv, main, rt)
            sources += found
        graph_only = [lk for lk in lr.drugs if not lk.label_ids]
        if graph_only and rt.intent != "interaction" and (not labelled or rt.intent in ("indications", "general")):
            n_graph = 0
            for lk in graph_only[:6]:  # a zh name may link an INN with no label first; keep looking for edges
                edges = self.g.edges_of("Drug", lk.id, ["RECOMMAND_DRUG", "COMMON_DRUG"], limit=12 - n_graph)
                sources += [self.graph_source(e) for e in edges]
                n_graph += len(edges)
                if n_graph >= 12:
                    break
        if lr.diseases and not lr.drugs:
            for d in lr.diseases[:2]:
                edges = self.g.edges_of("Disease", d.id, ["RECOMMAND_DRUG", "COMMON_DRUG"], limit=15)
                sources += [self.graph_source(e) for e in edges]
        for i, s in enumerate(sources, 1):
            s.sid = f"S{i}"
        ev.sources = sources
        ev.retrieved_labels = list(dict.fromkeys([*(s.doc_id for s in sources if s.kind == "label"), *other_labels]))
        return res

    def suggest(self, question: str, limit: int = 3) -> list[str]:
        """Label titles closest to an unlinked question (dense search, no filter): 'did you mean' candidates."""
        hits = self.v.search_dense(self.embedder.embed_queries([question])[0].tolist(), limit * 4)
        names: list[str] = []
        for h in hits:
            ids = h.payload.get("generic_ids") or h.payload.get("drug_ids") or []
            for n in ids[:1]:
                if n not in names:
                    names.append(n)
        return names[:limit]

    def _label_sources(self, question: str, qv, links: list[Link], rt: Route) -> tuple[list[Source], list[str]]:
        label_ids = list(dict.fromkeys(i for lk in links for i in lk.label_ids))
        wanted = {lk.id for lk in links}
        sq = sparse_query(question)
        hits: list[Hit] = []
        if rt.sections:
            hits = self.v.search_hybrid(
                qv(), sq, self.prefetch, SearchFilter(label_ids=label_ids, sections=rt.sections), prefetch=self.prefetch
            )
        if not hits:
            hits = self.v.search_hybrid(
                qv(), sq, self.prefetch, SearchFilter(label_ids=label_ids), prefetch=self.prefetch
            )
        if not hits:
            return [], []
        sec_rank = {s: i for i, s in enumerate(rt.sections)}
        # labels: those whose generic name is exactly the linked drug first, then by best hit rank
        best: dict[str, int] = {}
        exact: dict[str, bool] = {}
        for r, h in enumerate(hits):
            lid = h.payload["label_id"]
            best.setdefault(lid, r)
            exact[lid] = bool(wanted & set(h.payload.get("generic_ids", [])))
        label_order = sorted(best, key=lambda lid: (not exact[lid], best[lid]))
        lrank = {lid: i for i, lid in enumerate(label_order)}
        ranked = sorted(
            enumerate(hits),
            key=lambda t: (
                lrank[t[1].payload["label_id"]] > 0,  # the top label's passages first
                sec_rank.get(t[1].payload["section"], len(sec_rank)),
                t[0],
            ),
        )
        chosen = [h for _, h in ranked][: self.top_k]
        # the other labels of the drug stay visible (in rank order) for the answer's retrieved_labels
        return [self.label_source(h) for h in chosen], label_order

    def interaction_sources(self, groups: list[list[Link]], res: Retrieval) -> list[Source]:
        ids = [lk.id for g in groups for lk in g]
        owner = {lk.id: gi for gi, g in enumerate(groups) for lk in g}
        edges = [e for e in self.g.interactions_between(ids) if owner.get(e["src"]) != owner.get(e["dst"])]
        edges.sort(key=lambda e: SEVERITY_ORDER.get((e.get("props") or {}).get("level", "Unknown"), 4))
        sources = [self.graph_source(e) for e in edges]
        level: dict[frozenset[int], str] = {}
        for e in edges:  # sorted most severe first: the first edge of a pair gives its level
            level.setdefault(
                frozenset((owner[e["src"]], owner[e["dst"]])), (e.get("props") or {}).get("level", "Unknown")
            )
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                na, nb = groups[a][0].name, groups[b][0].name
                lv = level.get(frozenset((a, b)))
                if lv is None:
                    res.pairs_without_edge.append((na, nb))
                else:
                    res.pairs_with_edge.append((na, nb, lv))
        # label sentences that name the other drug, from each drug's interaction-related sections
        for gi, g in enumerate(groups):
            label_ids = list(dict.fromkeys(i for lk in g for i in lk.label_ids))
            if not label_ids:
                continue
            for gj, other in enumerate(groups):
                if gj == gi:
                    continue
                names = (
                    {norm_name(lk.name) for lk in other}
                    | {lk.id for lk in other}
                    | {norm_name(lk.matched) for lk in other}
                )
                q = " ".join(sorted(names))
                hits = self.v.search_sparse(
                    sparse_query(q),
                    10,
                    SearchFilter(
                        label_ids=label_ids, sections=["interactions", "warnings", "contraindications", "boxed_warning"]
                    ),
                )
                n = 0
                for h in hits:
                    if any(nm and nm in h.payload["text"].lower() for nm in names if len(nm) >= 3):
                        sources.append(self.label_source(h))
                        n += 1
                        if n >= 2:
                            break
        return sources


def mask_mentions(question: str, lr: LinkResult) -> str:
    """The question with linked names replaced by X, so a name never decides the route ("Children's Tylenol",
    "Pain Relief ..." are names, not questions about children or pain)."""
    q = norm_name(_LATIN_CJK.sub(" ", question))
    for m in sorted({lk.matched for lk in lr.links}, key=len, reverse=True):
        if m:
            q = q.replace(m, " X ")
    return q


def group_by_mention(drugs: list[Link]) -> list[list[Link]]:
    """Links of the same mention (華法林 → warfarin and the graph-only 华法林) are one drug of the question."""
    groups: dict[str, list[Link]] = {}
    for lk in drugs:
        groups.setdefault(lk.matched, []).append(lk)
    return list(groups.values())
