"""Fixed wording in both languages: disclaimers, clarifications, notes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DISCLAIMERS = {
    "en": (
        "Information from drug labels and a knowledge graph, for reference only; not medical advice and not a "
        "prescription. Ask a doctor or pharmacist before starting, stopping or combining medicines, and seek care "
        "at once for severe or unexpected symptoms."
    ),
    "zh": (
        "以上信息摘自药品说明书和医学知识图谱，仅供参考，不构成医疗建议或处方。"
        "用药、停药或联合用药前请咨询医生或药师；如出现严重或异常症状请立即就医。"
    ),
}


def disclaimer(lang: str) -> str:
    return DISCLAIMERS.get(lang, DISCLAIMERS["en"])


def t(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en


def distinct_names(linked: Iterable[Any]) -> list[str]:
    """The `.name` of each linked entity once, whatever its case, as first written ("Ibuprofen", "ibuprofen" →
    "Ibuprofen")."""
    out: dict[str, str] = {}
    for lk in linked:
        out.setdefault(lk.name.casefold(), lk.name)
    return list(out.values())


def zh_level(level: str) -> str:
    """A DDInter level in Chinese, as an adjective before 相互作用."""
    return {"major": "严重", "moderate": "中度", "minor": "轻微", "unknown": "程度未知的"}.get(level.lower(), "")


CLARIFY_WHO = {
    "en": "Who is it for: an adult or a child (what age)? Any pregnancy or breastfeeding, kidney or liver problems, "
          "or other medicines? The label's advice can differ for these.",
    "zh": "请问是谁用药：成人还是儿童（几岁）？是否怀孕或哺乳、有无肝肾功能问题、是否同时服用其他药物？"
          "说明书对这些情况的建议可能不同。",
}
DOSE_NOTE = {
    "en": " Doses in a label are general; your own dose depends on your condition, so confirm it with your doctor "
          "or pharmacist.",
    "zh": " 说明书剂量为一般推荐，个人用量需结合病情由医生或药师确定。",
}
