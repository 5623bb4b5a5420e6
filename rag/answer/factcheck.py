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

from kb_loaders.names import has_cjk, norm_name
from rag.core.text import tokens_for_overlap

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
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
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
_TIMES = (r"(once|twice|one time|two times|three times|four times|five times|six times|eight times|(\d+) times)")
PER_PERIOD = re.compile(_TIMES + r"\s*(?:a|per|each|every)?\s*(day|daily|week|weekly|month|monthly)\b", re.I)
_N_TIMES = {"once": 1, "one time": 1, "twice": 2, "two times": 2, "three times": 3, "four times": 4,
            "five times": 5, "six times": 6, "eight times": 8}
_PERIOD_DAYS = {"day": 1, "daily": 1, "week": 7, "weekly": 7, "month": 30, "monthly": 30}
EVERY_PERIOD = re.compile(r"\bevery (\d+|other) (day|week|month)s?\b|每(\d*)(周|月)\s*(\d|[一二两三四])?次?", re.I)
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
    """'1,000' → 1000 (thousands), '2,5' → 2.5 (a decimal comma), '0.75' → 0.75."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        return float(s.replace(",", ""))
    return float(s.replace(",", "."))


def quantities(text: str) -> set[tuple[float, str]]:
    out: set[tuple[float, str]] = set()
    for m in QUANTITY.finditer(text):
        unit = UNIT_ALIASES[m.group(3).lower()]
        out.add((_norm_num(m.group(1)), unit))
        if m.group(2):
            out.add((_norm_num(m.group(2)), unit))
    return out


def quantity_seq(text: str) -> list[tuple[float, str]]:
    return [(_norm_num(m.group(1)), UNIT_ALIASES[m.group(3).lower()]) for m in QUANTITY.finditer(text)]


def numbers(text: str) -> set[float]:
    """Every number a text states, in digits or words ("three times" → 3)."""
    out = {_norm_num(x) for x in BARE_NUMBER.findall(text)} | {v for v, _ in quantities(text)}
    return out | {float(WORD_NUMBERS[w.lower()]) for w in _WORD_NUM.findall(text)}


def frequency_seq(text: str) -> list[float]:
    """The dosing frequencies a text states, as times per day, in the order they appear (every 8 hours → 3)."""
    found: list[tuple[int, float]] = []
    for rx, n in FREQ_WORDS:
        found += [(m.start(), float(n)) for m in rx.finditer(text)]
    for m in EVERY_HOURS.finditer(text):
        g = next((x for x in m.groups() if x and int(x) > 0), None)
        if g:
            found.append((m.start(), round(24 / int(g), 3)))
    for m in ZH_FREQ.finditer(text):
        g = m.group(1)
        found.append((m.start(), float(ZH_NUM[g]) if g in ZH_NUM else float(g)))
    for m in PER_PERIOD.finditer(text):  # "twice weekly" → 2/7 a day
        n = _N_TIMES.get(m.group(1).lower()) or int(m.group(2) or 1)
        found.append((m.start(), round(n / _PERIOD_DAYS[m.group(3).lower()], 4)))
    for m in EVERY_PERIOD.finditer(text):
        if m.group(2):
            k = 2 if m.group(1).lower() == "other" else int(m.group(1))
            found.append((m.start(), round(1 / (k * _PERIOD_DAYS[m.group(2).lower()]), 4)))
        elif m.group(4):
            k, zh = int(m.group(3) or 1), m.group(5)
            times = (ZH_NUM[zh] if zh in ZH_NUM else int(zh)) if zh else 1
            found.append((m.start(), round(times / (k * (7 if m.group(4) == "周" else 30)), 4)))
    seen: dict[int, float] = {}
    for pos, v in sorted(found):  # one value per position (the daily patterns overlap the per-period ones)
        if pos not in seen:
            seen[pos] = v
    return list(seen.values())


def frequencies(text: str) -> set[float]:
    return set(frequency_seq(text))


def _prefix_differs(fact: list, ev: list) -> bool:
    """A near-copied clause states the same values in the same order (it may stop early: a cut quote)."""
    return bool(fact) and fact != ev[: len(fact)]


def routes(text: str) -> set[str]:
    return {k for k, rx in ROUTES.items() if rx.search(text)}


def polarity(text: str) -> tuple[bool, bool]:
    """(says something must not be done, says it is fine/recommended) — "not recommended" counts as the former."""
    neg = bool(NEGATIVE.search(text) or NOT_RECOMMENDED.search(text))
    pos_text = NOT_RECOMMENDED.sub(" ", text)
    return neg, bool(POSITIVE.search(pos_text))


def _names(text: str, name: str) -> bool:
    """`text` (normalised, space-padded) names `name`: as whole words in latin script, as a substring in Chinese."""
    return bool(name) and ((name in text) if has_cjk(name) else (f" {name} " in text))


_CLAUSE = re.compile(r"\.(?=\s|$)|[;:!?。；！？•\n]+|\s\*\s|\s-(?=[a-z])")
_NEG_WORDS = re.compile(r"\bnot\b|\bnever\b|\bno\b|\bnor\b|n't\b|\bwithout\b|\bavoid\w*|"
                        r"contraindicat\w*|不|未|禁|忌|勿|无", re.I)
NEAR_COPY = (0.75, 0.6)  # share of the fact clause's words in the cited clause, and the reverse


def _words(text: str) -> set[str]:
    return tokens_for_overlap(text) | set(re.findall(r"\d+(?:\.\d+)?", text))


def clause_reasons(fact: str, ev: str) -> list[str]:
    """A fact clause that copies a clause of the evidence must keep its negation, numbers, frequency and severity:
    the way a model corrupts a quote it otherwise copies ("should not be" → "should be", "once" → "twice weekly")."""
    ev_clauses = [(c, _words(c)) for c in _CLAUSE.split(ev) if c.strip()]
    out: list[str] = []
    fw_all, ew_all = _words(fact), _words(ev)
    shared_all = len(fw_all & ew_all)
    if fw_all and shared_all / len(fw_all) >= NEAR_COPY[0] and shared_all / (len(ew_all) or 1) >= NEAR_COPY[1] \
            and len(_NEG_WORDS.findall(fact)) != len(_NEG_WORDS.findall(ev)):
        out.append("the fact copies the cited text but not its negations")
    for fc in _CLAUSE.split(fact):
        fw = _words(fc)
        if len(fw) < 3 or not ev_clauses:
            continue
        ec, ew = max(ev_clauses, key=lambda x: len(fw & x[1]) / (len(fw | x[1]) or 1))
        shared = len(fw & ew)
        if shared / len(fw) < NEAR_COPY[0] or shared / (len(ew) or 1) < NEAR_COPY[1]:
            continue
        if len(_NEG_WORDS.findall(fc)) != len(_NEG_WORDS.findall(ec)):
            out.append(f"negation differs from the cited sentence: {fc.strip()[:60]!r}")
        fq, eq = quantities(fc), quantities(ec)
        if any(u in {x[1] for x in eq} and (v, u) not in eq for v, u in fq) \
                or _prefix_differs(quantity_seq(fc), quantity_seq(ec)):
            out.append(f"a number differs from the cited sentence: {fc.strip()[:60]!r}")
        ff, ef = frequency_seq(fc), frequency_seq(ec)
        if _prefix_differs(ff, ef) or (ff and not ef and _FREQ_WORD.search(ec)):
            out.append(f"the frequency differs from the cited sentence: {fc.strip()[:60]!r}")
        for lv, rx in SEVERITY_WORDS.items():
            if rx.search(fc) and not rx.search(ec):
                out.append(f"severity {lv!r} is not in the cited sentence")
        if POSITIVE.search(fc) and not POSITIVE.search(ec):
            out.append(f"the fact recommends where the cited sentence does not: {fc.strip()[:60]!r}")
    return out


_FREQ_WORD = re.compile(r"\b(?:daily|weekly|monthly|times? (?:a|per) (?:day|week)|hourly)\b|每日|每天|每周", re.I)


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
        low = " " + norm_name(ev) + " "
        for name, aliases in drug_mentions(fact):
            if not any(a and (_names(low, norm_name(a)) or a in claim.own_drugs) for a in aliases):
                reasons.append(f"drug {name!r} not named by the evidence")
    fneg, fpos = polarity(fact)
    eneg, epos = polarity(ev)
    if fpos and not fneg and not epos:
        reasons.append("the fact allows or recommends what the evidence does not say is allowed"
                       + (" (it forbids it)" if eneg else ""))
    if CONTRAINDICATED.search(fact) and not eneg:
        reasons.append("the fact calls contraindicated what the evidence does not")
    reasons += clause_reasons(fact, ev)
    if interaction or claim.level is not None:
        if SAFE_CLAIM.search(fact):
            reasons.append("an interaction is never 'safe'")
        if claim.level is not None:
            for lv, rx in SEVERITY_WORDS.items():
                if rx.search(fact) and lv != claim.level.lower():
                    reasons.append(f"severity {lv!r} but the graph records {claim.level!r}")
    return reasons
