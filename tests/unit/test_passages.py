"""Passage ranking (rag.retrieval.passages) at its seam: a scripted vector store returns, per filter, the ranked
hits a real hybrid search gave for a cross-lingual contraindication question (warnings text first in the open search,
the contraindications list fourth). The real-model version of the same case is
tests/integration/test_interfaces.py::test_openai_client_over_the_real_model."""

from __future__ import annotations

from collections.abc import Sequence

from rag.retrieval.linking import Link
from rag.retrieval.passages import rank_passages
from rag.retrieval.routing import Route, section_prior
from rag.stores.base import Hit, SearchFilter

LABEL = "label-1"


def _hit(i: str, section: str) -> Hit:
    return Hit(i, 0.0, {"label_id": LABEL, "section": section, "text": i, "generic_ids": ["drug:x"]})


OPEN = [_hit("w1", "warnings"), _hit("w2", "warnings"), _hit("w3", "warnings"), _hit("c1", "contraindications"),
        _hit("a1", "adverse_reactions")]


class ScriptedStore:
    """Answers search_hybrid with OPEN restricted to the filter's sections, scored as reciprocal ranks."""

    def __init__(self) -> None:
        self.filters: list[SearchFilter | None] = []

    def search_hybrid(self, dense: Sequence[float], sparse: object, limit: int, flt: SearchFilter | None = None,
                      prefetch: int = 50) -> list[Hit]:
        self.filters.append(flt)
        keep = [h for h in OPEN if flt is None or not flt.sections or h.payload["section"] in flt.sections]
        return [Hit(h.id, 1.0 / (r + 1), dict(h.payload)) for r, h in enumerate(keep[:limit])]


def _route(probs: dict[str, float]) -> Route:
    top = max(probs, key=lambda k: probs[k])
    secs = {"contraindications": ["contraindications", "warnings", "boxed_warning"],
            "adverse_reactions": ["adverse_reactions", "warnings", "boxed_warning"]}[top]
    return Route(top, secs, probs, section_prior(probs), probs[top], soft=True)


def _rank(rt: Route) -> list[str]:
    links = [Link("drug:x", "Drug", "X", "x", [LABEL])]
    got = rank_passages(ScriptedStore(), lambda: [0.0], "X 有哪些禁忌？", links, rt, top_k=5, prefetch=50)  # type: ignore[arg-type]
    return [h.id for h in got.hits]


def test_best_passage_of_the_asked_section_comes_first_even_when_outranked_in_the_open_search() -> None:
    order = _rank(_route({"contraindications": 0.97, "warnings": 0.03}))
    assert order[0] == "c1"
    assert order[1] == "w1"  # the second preferred section's best passage next


def test_the_prior_still_follows_the_route() -> None:
    order = _rank(_route({"adverse_reactions": 0.9, "contraindications": 0.1}))
    assert order[0] == "a1"  # last in the open search, first because the question asks for it


def test_each_preferred_section_is_searched_alone_within_the_linked_labels() -> None:
    store = ScriptedStore()
    rt = _route({"contraindications": 1.0})
    rank_passages(store, lambda: [0.0], "q", [Link("drug:x", "Drug", "X", "x", [LABEL])], rt, 5, 50)  # type: ignore[arg-type]
    assert [f.sections if f else None for f in store.filters] == [None, ["contraindications"], ["warnings"]]
    assert all(f is not None and list(f.label_ids or []) == [LABEL] for f in store.filters)


class TwoProducts:
    """Two inserts of one drug id: the capsule's passage outranks the tablet's in the search."""

    HITS = [Hit("cap", 1.0, {"label_id": "cap", "section": "dosage", "text": "一次3粒", "title": "更年安胶囊",
                             "generic_ids": ["更年安"]}),
            Hit("tab", 0.9, {"label_id": "tab", "section": "dosage", "text": "一次6片", "title": "更年安片",
                             "generic_ids": []})]  # an insert without 【药品名称】 has no generic name

    def search_hybrid(self, dense: Sequence[float], sparse: object, limit: int, flt: SearchFilter | None = None,
                      prefetch: int = 50) -> list[Hit]:
        return [Hit(h.id, h.score, dict(h.payload)) for h in self.HITS]


def _first_label(matched: str) -> str:
    links = [Link("更年安", "Drug", "更年安胶囊", matched, ["cap", "tab"])]
    rt = _route({"contraindications": 1.0})
    return rank_passages(TwoProducts(), lambda: [0.0], matched, links, rt, 5, 50).label_order[0]  # type: ignore[arg-type]


def test_the_product_the_question_names_comes_first() -> None:
    assert _first_label("更年安片") == "tab"
    assert _first_label("更年安胶囊") == "cap"
    assert _first_label("更年安") == "cap"  # no form named: the generic name, then the passage score
