"""Label passages for a question: hybrid search over every section of the linked drugs' labels, ranked by the
passage's own score plus the route's soft prior over sections; and the passage of the chosen label about a patient
population the question mentions (kidney or liver disease, pregnancy, …).

Each search's scores are normalised to its own best (hybrid scores are rank fusions, comparable only within one
search); a passage keeps its best normalised score, so the top passage of each preferred section scores 1.

Why a soft prior and not a section filter: the router's best guess can be wrong for an unusual phrasing, and the
sample's labels often lack the section a population question names (pregnancy lives in warnings or
contraindications there). Searching all sections and letting a strong passage outrank a weakly preferred section
lands on the best passage of the right label either way; a confident route still wins ties.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kb_loaders.names import norm_name
from rag.core.text import to_simplified
from rag.retrieval.context import BY_KEY, MAX_POPULATIONS, Population
from rag.retrieval.linking import Link
from rag.retrieval.routing import Route
from rag.retrieval.sparse import sparse_query
from rag.stores.base import Hit, SearchFilter, VectorStore

POPULATION_LABELS = 3  # labels of the drug read for a population passage the answer's own label lacks
PRIOR_WEIGHT = 1.0  # how much a fully preferred section adds to a passage's normalised hybrid score (0..1)


@dataclass(slots=True)
class Ranked:
    hits: list[Hit]  # the chosen passages, best first (the top label's first)
    label_order: list[str]  # every label of the linked drugs that matched, best first
    same_drug: list[str] = field(default_factory=list)  # label_order's labels of the first label's drug itself


def rank_passages(v: VectorStore, qv: Callable[[], list[float]], question: str, links: Sequence[Link], rt: Route,
                  top_k: int, prefetch: int) -> Ranked:
    label_ids = list(dict.fromkeys(i for lk in links for i in lk.label_ids))
    if not label_ids:
        return Ranked([], [])
    wanted = {lk.id for lk in links}
    sq = sparse_query(question)
    pool: dict[str, Hit] = {}
    # every section, then each preferred section alone: the best passage of the section the question asks for then
    # competes at full strength even when passages of a neighbouring section outrank it in the open search (cross-
    # lingual questions: "萘普生有哪些禁忌？" matches warnings text about as well as the contraindications list)
    searches: list[list[str]] = [[]] + [[s] for s in rt.sections[:2]]
    if rt.sections and not rt.soft:  # a route from exact cues alone: its sections first, the rest only if empty
        searches = [rt.sections, []]
    for sections in searches:
        if pool and not rt.soft:
            break
        flt = SearchFilter(label_ids=label_ids, sections=sections or None)
        found = v.search_hybrid(qv(), sq, prefetch, flt, prefetch=prefetch)
        top = max((h.score for h in found), default=0.0) or 1.0
        for h in found:  # normalised within its own search, then the best of the two kept
            h = Hit(h.id, h.score / top, h.payload)
            if h.id not in pool or pool[h.id].score < h.score:
                pool[h.id] = h
    if not pool:
        return Ranked([], [])
    prior = rt.prior or {s: 1.0 / (i + 1) for i, s in enumerate(rt.sections)}
    peak = max(prior.values(), default=0.0) or 1.0

    def fused(h: Hit) -> float:
        return h.score + PRIOR_WEIGHT * prior.get(h.payload["section"], 0.0) / peak

    rank = {s: i for i, s in enumerate(rt.sections)}
    if rt.soft:
        hits = sorted(pool.values(), key=lambda h: (-fused(h), h.id))
    else:  # exact cues: the routed sections in their order, then the passage score
        hits = sorted(pool.values(), key=lambda h: (rank.get(h.payload["section"], len(rank)), -h.score, h.id))
    # labels: one whose title is the product as the question names it first, then one whose generic name is the
    # linked drug (not a combination product naming it), then by best hit. The first: a drug is one id for all its
    # products (更年安 holds 更年安胶囊 ×5 and 更年安片), and a question about 更年安片 is about the tablet's
    # insert, whose dose, ingredients and cautions differ from the capsule's
    def as_named(name: str) -> str:  # questions are read as simplified, titles keep their script (止痛化癥片)
        return to_simplified(norm_name(name))

    named_as = {as_named(lk.matched) for lk in links}
    best: dict[str, int] = {}
    exact: dict[str, bool] = {}
    named: dict[str, bool] = {}
    for r, h in enumerate(hits):
        lid = h.payload["label_id"]
        if lid in best:
            continue  # title and generic names are the label's, alike on each of its passages
        best[lid] = r
        named[lid] = as_named(h.payload.get("title", "")) in named_as  # (an insert without 【药品名称】 has no
        exact[lid] = named[lid] or bool(wanted & set(h.payload.get("generic_ids", [])))  # generic name of its own)
    label_order = sorted(best, key=lambda lid: (not named[lid], not exact[lid], best[lid]))
    first = label_order[0]
    ordered = [h for h in hits if h.payload["label_id"] == first] + [h for h in hits if h.payload["label_id"] != first]
    same = [lid for lid in label_order if exact[lid]] if exact[first] else [first]
    return Ranked(ordered[:top_k], label_order, same)


def population_hits(v: VectorStore, embed: Callable[[str], list[float]], label_ids: Sequence[str],
                    keys: Sequence[str], limit: int = 20) -> list[tuple[str, Hit]]:
    """For each population key, the best passage about that population of the first of `label_ids` that has one
    (or none). `label_ids` are labels of the same drug, the answer's label first: another manufacturer's label of the
    drug may carry the pregnancy or pediatric text that the chosen one leaves out, and quoting it (cited as that
    label) beats saying the label is silent. At most POPULATION_LABELS of them are read."""
    out: list[tuple[str, Hit]] = []
    for key in keys[:MAX_POPULATIONS]:
        for lid in label_ids[:POPULATION_LABELS]:
            hit = _population_hit(v, embed, lid, BY_KEY[key], limit)
            if hit is not None:
                out.append((key, hit))
                break
    return out


def _population_hit(v: VectorStore, embed: Callable[[str], list[float]], label_id: str, pop: Population,
                    limit: int) -> Hit | None:
    found = v.search_hybrid(embed(pop.query), sparse_query(pop.query), limit,
                            SearchFilter(label_ids=[label_id]), prefetch=30)
    hit = next((h for h in found if pop.passage.search(h.payload["text"])), None)
    if hit is None:  # the search missed it (a short mention in a long label): the chunk that says it most often
        said = [(len(pop.passage.findall(p["text"])), p) for p in v.scroll(SearchFilter(label_ids=[label_id]))]
        said = [x for x in said if x[0]]
        if said:
            _, best = max(said, key=lambda x: (x[0], -int(x[1].get("section_idx", 0)), -int(x[1]["start"])))
            hit = Hit(str(best["chunk_id"]), 0.0, best)
    return hit
