"""Question intent → label sections: the semantic classifier's distribution (rag.retrieval.intent) fused with a few
exact lexical cues, turned into a route (the intent, its sections in order) and a soft prior over sections.

The cues below are kept where a phrase is exact ("boxed warning", "黑框", "side effect", "禁忌"): each adds a bonus to
its intent's probability; it never decides alone when the classifier is there. Without a classifier (no embedder,
e.g. some unit tests) the first matching cue decides, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# intent → (cue regex, sections to search in order). Without a classifier, the first matching cue is the intent.
_RULES: list[tuple[str, str, list[str]]] = [
    (
        "prescription",
        r"(write|give|issue|make)( me)? (a |an )?(prescription|rx)|prescribe (me|for me)|开(个|一个|张|一张)?(处方|"
        r"药方)|给我开",
        [],
    ),
    ("boxed_warning", r"boxed warning|black[- ]box|黑框", ["boxed_warning", "warnings"]),
    (
        "interaction",
        r"interact|together with|at the same time|combine|combination with|along with|mix(ed|ing)? with|"
        r"take .+ (and|with) .+|相互作用|一起(吃|服|用)|同时(吃|服|用)|同服|合用|联用|并用|配伍|一块",
        ["interactions", "warnings", "contraindications"],
    ),
    (
        "contraindications",
        r"contraindicat|who should not|should not (take|use)|must not|not be (used|taken)|can't take|"
        r"cannot take|禁忌|不能(用|吃|服)|不宜|禁用|哪些人不",
        ["contraindications", "warnings", "boxed_warning"],
    ),
    ("pregnancy", r"pregnan|expecting a baby|孕|妊娠|怀孕", ["pregnancy", "warnings", "contraindications"]),
    ("lactation", r"breast|nursing|lactat|哺乳|母乳|喂奶", ["lactation", "pregnancy", "warnings"]),
    (
        "pediatric",
        r"\bchild|pediatric|paediatric|infant|kids?\b|儿童|小儿|婴|幼儿|孩子",
        ["pediatric", "dosage", "warnings"],
    ),
    ("geriatric", r"elderly|geriatric|older (adult|patient|people)|老年|老人", ["geriatric", "dosage", "warnings"]),
    ("overdosage", r"overdos|too much|taken too many|过量|吃多了|服多了", ["overdosage", "warnings"]),
    (
        "adverse_reactions",
        r"side[- ]effect|adverse|reaction|undesirable|不良反应|副作用|副反应",
        ["adverse_reactions", "warnings", "boxed_warning"],
    ),
    (
        "dosage",
        r"\bdos(e|es|age|ing)\b|how (much|many|often|long|to (take|use))|how (should|do|can|would) (i|you|we|"
        r"he|she|they) (take|use|give)|administ|max(imum)? daily|剂量|用法|用量|怎么(吃|服|用)|如何(服用|使用)|一次|"
        r"一日|每天|几次|多少",
        ["dosage"],
    ),
    ("warnings", r"warning|precaution|caution|careful|注意事项|注意|警告|慎用", ["warnings", "boxed_warning"]),
    ("storage", r"\bstor(e|age)\b|shelf|keep it|贮藏|储存|保存", ["storage"]),
    ("ingredients", r"ingredient|contain|what is in|成分|含有", ["ingredients"]),
    (
        "pharmacology",
        r"mechanism|how does .+ work|pharmacolog|half[- ]life|药理|作用机制|机理|半衰期",
        ["pharmacology"],
    ),
    (
        "indications",
        r"used for|use[ds]? of|what is .+ for|indicat|treat|purpose|good for|what does .+ do|适应症|适应证|适应|"
        r"功能主治|"
        r"主治|主要用于|治疗|用途|治什么|干什么|有什么用|作用|功效|用于",
        ["indications"],
    ),
    (
        "disease_drugs",
        r"what (drug|medicine|medication)s? (for|to take|treat)|which (drug|medicine|medication)s?|吃什么药|"
        r"用什么药|推荐.*药|什么药",
        [],
    ),
]
_COMPILED = [(name, re.compile(rx, re.I), secs) for name, rx, secs in _RULES]
SECTIONS: dict[str, list[str]] = {name: secs for name, _, secs in _RULES}
CLASS_TO_INTENT = {"interactions": "interaction"}  # prototype class names → route intents
LEX_BONUS = 0.35  # added to an intent's probability when one of its exact cues is in the question
RX_MIN = 0.7  # the request classifier's probability from which a question is refused as a prescription request
MIN_CONFIDENCE = 0.0  # below it the route is "general" (no preferred section); the prior still ranks passages
RANK_WEIGHTS = (1.0, 0.6, 0.3)


@dataclass(slots=True)
class Route:
    intent: str
    sections: list[str]  # [] = no section filter
    probs: dict[str, float] = field(default_factory=dict)  # intent → fused probability
    prior: dict[str, float] = field(default_factory=dict)  # section → prior weight (sums to 1 when set)
    confidence: float = 1.0
    soft: bool = False  # from the classifier: the prior ranks passages; from cues alone: the sections filter them


def cues(question: str) -> list[str]:
    """Intents whose exact cue phrases occur in the (masked) question, in rule order."""
    return [name for name, rx, _ in _COMPILED if rx.search(question)]


def section_prior(probs: dict[str, float]) -> dict[str, float]:
    prior: dict[str, float] = {}
    for intent, p in probs.items():
        for w, sec in zip(RANK_WEIGHTS, SECTIONS.get(intent, []), strict=False):
            prior[sec] = prior.get(sec, 0.0) + p * w
    total = sum(prior.values())
    return {k: v / total for k, v in prior.items()} if total else {}


def route(question: str, n_drugs: int = 0, n_diseases: int = 0, probs: dict[str, float] | None = None,
          rx: float | None = None) -> Route:
    """`question` has its linked names masked; `probs` is the intent classifier's distribution and `rx` the
    probability that the question asks for a prescription (None: exact cues only)."""
    found = cues(question)
    if probs is None:
        return _route_by_cues(question, found, n_drugs, n_diseases)
    if rx is not None and rx >= RX_MIN:
        return Route("prescription", [], {"prescription": rx}, {}, rx)
    fused: dict[str, float] = {}
    for cls, p in probs.items():
        fused[CLASS_TO_INTENT.get(cls, cls)] = fused.get(CLASS_TO_INTENT.get(cls, cls), 0.0) + p
    for name in found:
        if name in fused and name != "prescription":  # a prescription request is decided by meaning alone
            fused[name] += LEX_BONUS
    if not n_diseases or n_drugs:
        fused.pop("disease_drugs", None)
    fused = _normalise(fused)
    ranked = sorted(fused, key=lambda k: -fused[k])
    top = ranked[0] if ranked else "general"
    prior = section_prior(fused)
    if n_drugs >= 2:
        return Route("interaction", list(SECTIONS["interaction"]), fused, prior, fused.get("interaction", 0.0), True)
    if n_diseases and not n_drugs:
        return Route("disease_drugs", [], fused, prior, fused.get("disease_drugs", 0.0), True)
    conf = fused.get(top, 0.0)
    if conf < MIN_CONFIDENCE:
        return Route("general", [], fused, prior, conf, True)
    return Route(top, list(SECTIONS.get(top, [])), fused, prior, conf, True)


def _normalise(d: dict[str, float]) -> dict[str, float]:
    total = sum(d.values())
    return {k: v / total for k, v in d.items()} if total > 0 else d


def _route_by_cues(question: str, found: list[str], n_drugs: int, n_diseases: int) -> Route:
    for name in found:
        if name == "interaction" and n_drugs < 2 and not re.search(r"interact|相互作用", question, re.I):
            continue  # "take X with food" etc. is not a drug–drug question
        if name == "disease_drugs" and n_diseases == 0:
            continue
        return Route(name, list(SECTIONS[name]), {name: 1.0}, section_prior({name: 1.0}))
    if n_drugs >= 2:
        return Route("interaction", list(SECTIONS["interaction"]))
    if n_diseases and not n_drugs:
        return Route("disease_drugs", [])
    return Route("general", [])
