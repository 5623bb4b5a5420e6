"""Retrieval: link entities → route by meaning → graph facts first → label passages (hybrid search, soft section
prior) → the passage about the patient's population, when the question gives one.

Returns a Retrieval whose Evidence holds the numbered sources an answer builder may cite. Label passages carry the
whole stored section text, so quotes can be checked as exact spans.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from graph.store import GEdge, GraphStore
from kb_loaders.names import has_cjk, norm_name
from rag.core.errors import NotFound
from rag.core.text import detect_language, read_chinese, read_question
from rag.core.types import Evidence, Source, Turn
from rag.retrieval.context import INTENT_TOPIC, background_mentions, populations, substances, without_background
from rag.retrieval.embedding import Embedder
from rag.retrieval.intent import IntentClassifier, RequestClassifier, addressed_tails, without_disclaimers
from rag.retrieval.interactions import PairRecord, check_pairs, interactions_of_one
from rag.retrieval.linking import _LATIN_CJK, EntityLinker, Link, LinkResult, is_zh_product
from rag.retrieval.passages import population_hits, rank_passages
from rag.retrieval.routing import (
    POLICY_INTENTS,
    Route,
    after_retraction,
    asks_prescription_status,
    asks_which_drugs,
    route,
)
from rag.stores.base import Hit, SearchFilter, VectorStore

log = logging.getLogger(__name__)
GRAPH_TITLES = {"ddinter": "DDInter drug–drug interactions", "cmedkg": "Chinese medical knowledge graph (CMeKG)"}
INDICATION_EDGES = ["RECOMMAND_DRUG", "COMMON_DRUG"]


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
    pairs: list[PairRecord] = field(default_factory=list)  # every pair of the drugs asked about
    populations: list[str] = field(default_factory=list)  # patient context given (rag.retrieval.context)
    substances: list[str] = field(default_factory=list)  # alcohol, grapefruit, … a substance question names
    listing: bool = False  # besides the pairs, the one asked-about drug's own interactions are listed


class Retriever:
    def __init__(self, vstore: VectorStore, gstore: GraphStore, embedder: Embedder, linker: EntityLinker,
                 top_k: int = 8, prefetch: int = 50, classifier: IntentClassifier | None = None,
                 requests: RequestClassifier | None = None) -> None:
        self.v = vstore
        self.g = gstore
        self.embedder = embedder
        self.linker = linker
        self.top_k = top_k
        self.prefetch = prefetch
        self.classifier = classifier
        self.requests = requests
        self._sections: OrderedDict[tuple[str, str], dict[int, str]] = OrderedDict()
        self._fixed: dict[str, list[float]] = {}  # vectors of the fixed population / topic / substance queries

    def fixed_vec(self, text: str) -> list[float]:
        """The vector of a fixed query text (rag.retrieval.context: one per population, topic and substance),
        embedded once per retriever instead of once per question that needs it."""
        vec = self._fixed.get(text)
        if vec is None:
            vec = self._fixed[text] = self.embedder.embed_queries([text])[0].tolist()
        return vec

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

    def label_source(self, hit: Hit, population: str | None = None) -> Source:
        p = hit.payload
        full = self.section_texts(p["label_id"], p["section"]).get(int(p.get("section_idx", 0)), p["text"])
        return Source(sid="", kind="label", doc_id=p["label_id"], title=p.get("title", ""), section=p["section"],
                      section_name=p.get("section_name"), version=p.get("version"), text=p["text"],
                      offset=int(p["start"]), section_text=full, score=hit.score, language=p.get("language", "en"),
                      drug_ids=list(p.get("drug_ids", [])), population=population)

    def graph_source(self, edge: GEdge) -> Source:
        text = render_edge(edge)
        src = (edge.get("props") or {}).get("source", "")
        return Source(sid="", kind="graph", doc_id=edge["id"], title=GRAPH_TITLES.get(src, src or "knowledge graph"),
                      section=edge["type"], section_name=edge["type"], version=None, text=text, offset=0,
                      section_text=text, score=1.0, language="en", edge=edge)

    # -- the main entry -------------------------------------------------------------------------------------------
    def retrieve(self, question: str, history: Sequence[Turn] = ()) -> Retrieval:
        asked, question = question, read_question(question)  # simplified, Cantonese as Mandarin, shorthand
        # written out; the answer echoes what was asked
        lr = self.linker.link(question)
        if not lr.links and not lr.unlinked and history:  # "and the dose?" after a question about warfarin
            for turn in reversed(history):
                if turn.role == "user":
                    prev = self.linker.link(turn.content)
                    if prev.links:
                        lr = LinkResult(prev.links, lr.unlinked, lr.suggestions, lr.misspelt)
                        break
        groups = group_by_mention(lr.drugs)
        taken = background_mentions(question, [g[0].matched for g in groups]) if len(groups) >= 2 else set()
        subject = [g for g in groups if g[0].matched not in taken]
        one_subject = len(groups) >= 2 and len(subject) == 1
        # the router reads the question without the clauses that name a drug already taken (or, in one clause, with
        # it as "another medicine"): what is asked about the one subject decides ("My husband has been on warfarin for
        # years. Who is X not suitable for?" read as an interaction question when both were placeholders)
        whole = mask_mentions(question, lr)  # the request check reads the whole question ("my doctor put me on Z …")
        masked = mask_mentions(without_background(question, taken), lr, background=taken) if one_subject else whole
        rest = after_retraction(question)  # "side effects of — sorry, scratch that — who can't take X?"
        if rest is not None:
            masked = mask_mentions(rest, lr)
        vecs: dict[str, list[float]] = {}

        def embed(text: str) -> list[float]:
            if text not in vecs:
                vecs[text] = self.embedder.embed_queries([text])[0].tolist()
            return vecs[text]

        probs = rx = None
        if self.classifier is not None:
            rx_whole, tails = request_texts(question, lr, whole) if self.requests is not None else (whole, [])
            extra = [rx_whole] if rx_whole != whole else []  # the question less a clause that disclaims a request
            # one forward pass for retrieval, routing and the request check (and one more for the question the
            # router reads when it left out clauses about a drug already taken)
            batch = self.embedder.embed_queries([question, whole, *extra, *tails])
            vecs[question] = batch[0].tolist()
            intent_vec = batch[1] if masked == whole else self.embedder.embed_queries([masked])[0]
            probs = self.classifier.probabilities(self.classifier.scores(intent_vec))
            if self.requests is not None:
                scored = [(t, v) for i, (t, v) in enumerate(zip([rx_whole, *tails], batch[1 + len(extra):],
                                                                strict=True))
                          if i or not asks_prescription_status(question)]  # "do I need a prescription for X?"
                rx = self.requests.request_probability([t for t, _ in scored], [v for _, v in scored]) \
                    if scored else 0.0
        history_text = read_chinese(" ".join(t.content for t in history if t.role == "user"))
        given = populations(f"{question} {history_text}")
        rt = route(masked, n_drugs=len(groups), n_diseases=len(lr.diseases), probs=probs, rx=rx,
                   text=question, context=given, one_subject=one_subject)
        ev = Evidence(question=asked, language=detect_language(question), intent=rt.intent, sections=rt.sections,
                      linked=[lk.entity() for lk in lr.links], history_text=history_text)
        res = Retrieval(ev, lr, rt, populations=given,
                        substances=substances(masked) if rt.intent == "substance" else [])
        if rt.intent in POLICY_INTENTS:
            return res  # nothing is retrieved for a request the answer policy refuses
        sources: list[Source] = []
        if rt.intent == "interaction" and len(groups) >= 2:
            sources += self._check_pairs(res, groups)
            if one_subject and asks_which_drugs(masked):  # "I'm on atorvastatin; what does X interact with?": the
                res.listing = True  # pair, then X's own recorded interactions
                sources += interactions_of_one(self.g, subject[0], self.graph_source)
        elif rt.intent == "interaction" and len(groups) == 1:  # "which drugs interact with X?": graph first
            sources += interactions_of_one(self.g, groups[0], self.graph_source)
        labelled = [lk for lk in lr.drugs if lk.label_ids]
        other_labels: list[str] = []
        if labelled:
            asked_about = [lk for lk in labelled if one_subject and lk.matched == subject[0][0].matched]
            first = (asked_about or labelled)[0].matched
            main = labelled if rt.intent == "interaction" and not res.listing else \
                [lk for lk in labelled if lk.matched == first]
            text = question
            if rt.intent != "interaction" and taken:  # the drugs already taken are the pair check's, not the search's
                for m in taken:
                    text = re.sub(re.escape(m), " ", text, flags=re.I)
            ranked = rank_passages(self.v, lambda: embed(text), text, main, rt, self.top_k, self.prefetch)
            sources += [self.label_source(h) for h in ranked.hits]
            other_labels = ranked.label_order
            keys = self._passage_topics(res, ranked.hits)
            if keys and ranked.label_order:
                # its own source even when the same chunk is already one for the asked section: the answer quotes
                # the sentence about the population from it, which the asked-section fact need not contain
                for key, hit in population_hits(self.v, self.fixed_vec, ranked.same_drug, keys):
                    sources.append(self.label_source(hit, population=key))
        sources += self._graph_facts(lr, rt, bool(labelled))
        if rt.intent != "interaction" and len(groups) >= 2:  # a question about one drug beside others the asker
            # takes: every pair is still checked, after the answer's own passages
            sources += self._check_pairs(res, groups)
        for i, s in enumerate(sources, 1):
            s.sid = f"S{i}"
        ev.sources = sources
        ev.retrieved_labels = list(dict.fromkeys([*(s.doc_id for s in sources if s.kind == "label"), *other_labels]))
        return res

    def _check_pairs(self, res: Retrieval, groups: list[list[Link]]) -> list[Source]:
        """Check every pair of the question's drugs into `res`; their graph edges and label sentences as sources."""
        res.pairs = check_pairs(self.g, self.v, groups, self.graph_source, self.label_source)
        res.evidence.interaction_pairs = [rec.ids for rec in res.pairs]
        return [s for rec in res.pairs for s in rec.edges + rec.label_sources]

    @staticmethod
    def _passage_topics(res: Retrieval, hits: Sequence[Hit]) -> list[str]:
        """Population passages to add: the substance a substance question names, or the asked topic when the chosen
        label has no section for it (pregnancy or storage text inside warnings); then the patient context the
        question gives."""
        rt = res.route
        if rt.intent == "interaction":  # the patient's own situation still matters ("my grandpa is 88, what does X
            return list(res.populations)  # interact with?"): its passage, not a topic or substance one
        keys = [*res.substances, *res.populations]
        topic = INTENT_TOPIC.get(rt.intent)
        first = hits[0].payload["label_id"] if hits else None
        if topic and rt.sections and not any(h.payload["label_id"] == first and h.payload["section"] == rt.sections[0]
                                             for h in hits):
            keys.insert(0, topic)
        return list(dict.fromkeys(keys))

    def retrieve_interactions(self, names: Sequence[str]) -> Retrieval:
        """Every pair among drugs given by name (the interaction checker): graph edges and label sentences.
        Raises NotFound naming the drugs the knowledge base does not know."""
        links: list[Link] = []
        unknown: list[str] = []
        for n in names:
            found = self.linker.link_name(n)
            if not found:
                unknown.append(n)
            for lk in found:
                lk.matched = n
            links += found
        if unknown:
            raise NotFound(f"unknown drug(s) not in the knowledge base: {', '.join(unknown)}")
        question = " + ".join(names)
        rt = Route("interaction", ["interactions"])
        ev = Evidence(question=question, language=detect_language(question), intent="interaction",
                      sections=["interactions"], linked=[lk.entity() for lk in links])
        res = Retrieval(ev, LinkResult(links, []), rt)
        sources = self._check_pairs(res, group_by_mention(links))
        for i, s in enumerate(sources, 1):
            s.sid = f"S{i}"
        ev.sources = sources
        ev.retrieved_labels = list(dict.fromkeys(s.doc_id for s in sources if s.kind == "label"))
        return res

    def _graph_facts(self, lr: LinkResult, rt: Route, labelled: bool) -> list[Source]:
        """Knowledge-graph edges: disease → recommended drugs for a drug without a label (or an indications
        question), and for a disease question."""
        out: list[Source] = []
        graph_only = [lk for lk in lr.drugs if not lk.label_ids]
        if graph_only and rt.intent != "interaction" and (not labelled or rt.intent in ("indications", "general")):
            for lk in graph_only[:6]:  # a zh name may link an INN with no label first; keep looking for edges
                out += [self.graph_source(e) for e in self.g.edges_of("Drug", lk.id, INDICATION_EDGES,
                                                                       limit=12 - len(out))]
                if len(out) >= 12:
                    break
        if lr.diseases and not lr.drugs:
            for d in lr.diseases[:2]:
                out += [self.graph_source(e) for e in self.g.edges_of("Disease", d.id, INDICATION_EDGES, limit=15)]
        return out

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


def request_texts(question: str, lr: LinkResult, whole: str | None = None) -> tuple[str, list[str]]:
    """What the request classifier reads of a question: the masked question and its masked `addressed_tails`,
    both without a clause that disclaims a request (`without_disclaimers`). `whole`: the masked question, if known."""
    text = without_disclaimers(question)
    masked = whole if whole is not None and text == question else mask_mentions(text, lr)
    return masked, [mask_mentions(t, lr) for t in addressed_tails(text)]


def mask_mentions(question: str, lr: LinkResult, background: set[str] | frozenset[str] = frozenset()) -> str:
    """The question with linked names replaced by placeholders (drugs X, Z, W in order of mention; diseases Y), so a
    name never decides the route ("Children's Tylenol" is a name, not a question about children) and the question
    reads like the router's prototypes."""
    q = norm_name(_LATIN_CJK.sub(" ", question))
    slots: dict[str, str] = {}
    drug_slots = iter(("X", "Z", "W", "V"))
    other = "其他药" if has_cjk(question) else "another medicine"
    for lk in lr.links:
        if lk.matched and lk.matched not in slots:
            slots[lk.matched] = "Y" if lk.type == "Disease" else other if lk.matched in background \
                else next(drug_slots, "X")
    # an unknown (latin) drug name is a name too, and so is a word close to drug names when the question names no
    # drug it knows ("Drug: nlutamide": flutamide or nilutamide?); beside a known drug such a word is more often a
    # misspelt ordinary one, and as a second drug it read as a pair question (held-out set: 3 of 1,770 fewer
    # section hits when masked there too). Chinese leftovers are the question itself
    for w in [*lr.unlinked, *(lr.misspelt if not lr.drugs else [])]:
        if not has_cjk(w) or is_zh_product(w):  # an unknown product with its form (复方甘草片) is a name as well
            slots.setdefault(norm_name(w), next(drug_slots, "X"))
    for m, first in lr.again.items():  # "Aleve (naproxen sodium)": one drug, one placeholder
        if first in slots:
            slots.setdefault(m, slots[first])
    for m in sorted(slots, key=len, reverse=True):
        q = q.replace(m, f" {slots[m]} ")
    return " ".join(q.split())


def group_by_mention(drugs: list[Link]) -> list[list[Link]]:
    """Links of the same mention (華法林 → warfarin and the graph-only 华法林) are one drug of the question."""
    groups: dict[str, list[Link]] = {}
    for lk in drugs:
        groups.setdefault(lk.matched, []).append(lk)
    return list(groups.values())
