"""Question-type routing to label sections, in English and Chinese."""

from __future__ import annotations

import re
from dataclasses import dataclass

# intent → (regex, sections to search in order). Checked in this order; the first match is the main intent.
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


@dataclass(slots=True)
class Route:
    intent: str
    sections: list[str]  # [] = no section filter


def route(question: str, n_drugs: int = 0, n_diseases: int = 0) -> Route:
    for name, rx, secs in _COMPILED:
        if rx.search(question):
            if name == "interaction" and n_drugs < 2 and not re.search(r"interact|相互作用", question, re.I):
                continue  # "take X with food" etc. is not a drug–drug question
            if name == "disease_drugs" and n_diseases == 0:
                continue
            return Route(name, list(secs))
    if n_drugs >= 2:
        return Route("interaction", ["interactions", "warnings", "contraindications"])
    if n_diseases and not n_drugs:
        return Route("disease_drugs", [])
    return Route("general", [])
