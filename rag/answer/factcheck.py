"""Does a fact say what its evidence says? A deterministic check of a generated fact against the text it cites.

Checked, in English and Chinese (each a reason when it fails):
- numbers: every number in the fact, with its unit ("500 mg", "12 hours", "每日 2 次"), appears in the evidence with
  the same unit (units normalised: mg/毫克, g/克, mL/毫升, hours/小时, …);
- frequency: a stated dosing frequency (once/twice/three times daily, every N hours, b.i.d., 一日两次 …) appears in
  the evidence, as times per day;
- route: a stated route (oral, intravenous, subcutaneous, …, 口服, 静脉 …) appears in the evidence;
- drug names: a drug the fact names is named by the evidence, or is the cited label's own drug;
- polarity: a fact that says a use is recommended/safe/allowed cannot rest on evidence that only says contraindicated /
  do not use, and a fact that says "contraindicated/do not" needs evidence that says so;
- severity: severity words in an interaction fact match the cited graph edge's level; "safe" is never supported.

The check needs no model. An optional entailment model (rag.answer.entailment) can add a second opinion; this check
never depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

UNIT_ALIASES = {
    "mg": "mg", "milligram": "mg", "milligrams": "mg", "毫克": "mg",
    "mcg": "mcg", "µg": "mcg", "μg": "mcg", "microgram": "mcg", "micrograms": "mcg", "微克": "mcg",
    "g": "g", "gram": "g", "grams": "g", "克": "g",
    "kg": "kg", "公斤": "kg", "千克": "kg",
    "ml": "ml", "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "millilitres": "ml", "毫升": "ml",
    "l": "l", "liter": "l", "litre": "l", "升": "l",
    "iu": "iu", "units": "iu", "unit": "iu", "单位": "iu",
    "%": "%",
    "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "h": "h", "小时": "h",
    "day": "d", "days": "d", "日": "d", "天": "d",
    "week": "w", "weeks": "w", "周": "w",
    "month": "mo", "months": "mo", "个月": "mo", "月": "mo",
    "year": "y", "years": "y", "岁": "y",
    "minute": "min", "minutes": "min", "min": "min", "分钟": "min",
    "tablet": "tab", "tablets": "tab", "片": "tab", "capsule": "cap", "capsules": "cap", "粒": "cap",
    "drop": "drop", "drops": "drop", "滴": "drop", "puff": "puff", "puffs": "puff", "喷": "puff",
    "times": "x", "time": "x", "次": "x",
}
_UNIT_RX = "|".join(sorted((re.escape(u) for u in UNIT_ALIASES), key=len, reverse=True))
_NUM = r"\d+(?:[.,]\d+)?"
# a number (or range) and its unit: "500 mg", "2.5mg", "10-20 mg", "每次 2 片", "12 hours"
QUANTITY = re.compile(rf"({_NUM})(?:\s*(?:-|–|to|~|至)\s*({_NUM}))?\s*(?:per\s+)?({_UNIT_RX})(?![a-z])", re.I)
BARE_NUMBER = re.compile(rf"(?<![A-Za-z0-9.]){_NUM}(?![A-Za-z0-9])")
ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_WORD_NUM = re.compile(r"\b(" + "|".join(WORD_NUMBERS) + r")\b", re.I)
FREQ_WORDS = [
    (re.compile(r"\bonce (?:a |per |each )?(?:day|daily)\b|\bonce-daily\b|\bq\.?d\.?\b|\bqday\b", re.I), 1),
    (re.compile(r"\btwice (?:a |per |each )?(?:day|daily)\b|\btwo times (?:a |per )?(?:day|daily)\b|\bb\.?i\.?d\.?\b",
                re.I), 2),
    (re.compile(r"\bthree times (?:a |per |each )?(?:day|daily)\b|\bt\.?i\.?d\.?\b", re.I), 3),
    (re.compile(r"\bfour times (?:a |per |each )?(?:day|daily)\b|\bq\.?i\.?d\.?\b", re.I), 4),
]
EVERY_HOURS = re.compile(r"\bevery (\d+)(?:\s*(?:-|to)\s*(\d+))? hours?\b|\bq(\d+)h\b|每(\d+)小时", re.I)
ZH_FREQ = re.compile(r"(?:每日|每天|一日|一天|日)\s*([一二两三四五六1-6])\s*次")
ROUTES = {
    "oral": re.compile(r"\boral(?:ly)?\b|\bby mouth\b|口服", re.I),
    "iv": re.compile(r"\bintravenous(?:ly)?\b|\bi\.v\.|\bIV\b|静脉", re.I),
    "im": re.compile(r"\bintramuscular(?:ly)?\b|\bi\.m\.|\bIM\b|肌内注射|肌注", re.I),
    "sc": re.compile(r"\bsubcutaneous(?:ly)?\b|\bs\.c\.|\bSC\b|皮下", re.I),
    "topical": re.compile(r"\btopical(?:ly)?\b|外用|涂抹", re.I),
    "inhaled": re.compile(r"\binhal\w*\b|吸入", re.I),
    "rectal": re.compile(r"\brectal(?:ly)?\b|直肠|塞肛", re.I),
    "ophthalmic": re.compile(r"\bophthalmic\b|\binto the eyes?\b|滴眼", re.I),
    "transdermal": re.compile(r"\btransdermal\b|贴敷|贴剂", re.I),
}
NEGATIVE = re.compile(r"contraindicat|\bmust not\b|\bshould not\b|\bdo not\b|\bdon't\b|\bnever\b|\bavoid\b|"
                      r"\bnot (?:be )?(?:used|taken|given|recommended)\b|禁用|禁忌|不能|不可|不宜|不得|避免|忌", re.I)
POSITIVE = re.compile(r"\brecommended\b|\bindicated\b|\bsafe(?:ly)?\b|\bcan (?:be )?(?:used|taken|given)\b|"
                      r"\bmay (?:be )?(?:used|taken|given)\b|\bis (?:fine|ok|okay)\b|\bapproved\b|推荐|适用|可以|"
                      r"可用|安全",
                      re.I)
CONTRAINDICATED = re.compile(r"contraindicat|禁用|禁忌", re.I)
NOT_RECOMMENDED = re.compile(r"\bnot (?:be )?recommended\b|\bnot (?:safe|approved|indicated)\b|"
                             r"不推荐|不适用|不安全", re.I)
SEVERITY_WORDS = {
    "major": re.compile(r"\bmajor\b|\bsevere\b|\bserious\b|\blife[- ]threatening\b|严重", re.I),
    "moderate": re.compile(r"\bmoderate\b|中度|中等", re.I),
    "minor": re.compile(r"\bminor\b|\bmild\b|轻微|轻度", re.I),
}
SAFE_CLAIM = re.compile(r"\bsafe\b|\bno (?:known )?interactions?\b|\bdo(?:es)? not interact\b|"
                        r"安全|没有相互作用|无相互作用",
                        re.I)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a fact is checked against: the cited text, the cited label's own drug names, an edge level if any."""

    text: str
    own_drugs: frozenset[str] = frozenset()  # lower-case names/ids of the cited label's drug (it may name itself)
    level: str | None = None  # the graph edge level for an interaction citation


def _norm_num(s: str) -> float:
    return float(s.replace(",", "."))


def quantities(text: str) -> set[tuple[float, str]]:
    out: set[tuple[float, str]] = set()
    for m in QUANTITY.finditer(text):
        unit = UNIT_ALIASES[m.group(3).lower()]
        out.add((_norm_num(m.group(1)), unit))
        if m.group(2):
            out.add((_norm_num(m.group(2)), unit))
    return out


def numbers(text: str) -> set[float]:
    """Every number a text states, in digits or words ("three times" → 3)."""
    out = {_norm_num(x) for x in BARE_NUMBER.findall(text)} | {v for v, _ in quantities(text)}
    return out | {float(WORD_NUMBERS[w.lower()]) for w in _WORD_NUM.findall(text)}


def frequencies(text: str) -> set[float]:
    """Times per day a text states (every 8 hours → 3)."""
    out: set[float] = {n for rx, n in FREQ_WORDS if rx.search(text)}
    for m in EVERY_HOURS.finditer(text):
        for g in m.groups():
            if g and int(g) > 0:
                out.add(round(24 / int(g), 3))
    for m in ZH_FREQ.finditer(text):
        g = m.group(1)
        out.add(float(ZH_NUM[g]) if g in ZH_NUM else float(g))
    return out


def routes(text: str) -> set[str]:
    return {k for k, rx in ROUTES.items() if rx.search(text)}


def polarity(text: str) -> tuple[bool, bool]:
    """(says something must not be done, says it is fine/recommended) — "not recommended" counts as the former."""
    neg = bool(NEGATIVE.search(text) or NOT_RECOMMENDED.search(text))
    pos_text = NOT_RECOMMENDED.sub(" ", text)
    return neg, bool(POSITIVE.search(pos_text))


def check(fact: str, claim: Claim, drug_mentions: Callable[[str], Iterable[tuple[str, set[str]]]] | None = None,
          interaction: bool = False) -> list[str]:
    """Reasons the fact is not supported by the claim's text ([] = supported)."""
    ev = claim.text
    reasons: list[str] = []
    fq, eq = quantities(fact), quantities(ev)
    ev_numbers = numbers(ev)
    ff, ef = frequencies(fact), frequencies(ev)
    for v, unit in fq:
        counted = unit in ("x", "tab", "cap") and (v in ev_numbers or (unit == "x" and v in ef))
        if (v, unit) not in eq and not counted:
            reasons.append(f"number {v:g} {unit} not in the evidence")
    for v in {_norm_num(x) for x in BARE_NUMBER.findall(fact)} - {q[0] for q in fq}:
        if v not in ev_numbers:
            reasons.append(f"number {v:g} not in the evidence")
    if ff and not ff <= ef:
        reasons.append(f"frequency {sorted(ff)}/day not in the evidence {sorted(ef)}")
    fr = routes(fact)
    if fr and not fr <= routes(ev):
        reasons.append(f"route {sorted(fr - routes(ev))} not in the evidence")
    if drug_mentions is not None:
        low = ev.lower()
        for name, aliases in drug_mentions(fact):
            if not any(a and (a in low or a in claim.own_drugs) for a in aliases):
                reasons.append(f"drug {name!r} not named by the evidence")
    fneg, fpos = polarity(fact)
    eneg, epos = polarity(ev)
    if fpos and not fneg and eneg and not epos:
        reasons.append("the fact allows or recommends what the evidence forbids")
    if CONTRAINDICATED.search(fact) and not eneg:
        reasons.append("the fact calls contraindicated what the evidence does not")
    if interaction or claim.level is not None:
        if SAFE_CLAIM.search(fact):
            reasons.append("an interaction is never 'safe'")
        if claim.level is not None:
            for lv, rx in SEVERITY_WORDS.items():
                if rx.search(fact) and lv != claim.level.lower():
                    reasons.append(f"severity {lv!r} but the graph records {claim.level!r}")
    return reasons
