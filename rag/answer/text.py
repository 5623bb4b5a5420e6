"""Fixed wording in both languages: disclaimers, abstentions, clarifications, section titles."""

from __future__ import annotations

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
