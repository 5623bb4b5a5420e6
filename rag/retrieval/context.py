"""Patient context a question (or the conversation so far) gives: kidney or liver disease, pregnancy, breastfeeding, a
child or an older person. Each population has the pattern that finds it in a question, the query that finds the
label passage about it, and the pattern that passage must contain.

These are exact cues on purpose: a question either says "my kidneys are failing" / "肾功能不全" / "my 4 year old" or it
does not; what the population changes (the dose, a contraindication) is then read from the label, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Population:
    key: str
    ask: re.Pattern[str]  # in the question
    query: str  # to find the label passage
    passage: re.Pattern[str]  # the passage must say it
    en: str  # how an answer names it
    zh: str


_I = re.I
POPULATIONS: tuple[Population, ...] = (
    Population("renal", re.compile(r"\b(kidneys?|renal|(?:h[a]?emo|peritoneal )?dialy[sz]\w*|creatinine|crcl|e?gfr|"
                                    r"nephr\w*|uraemi\w*|uremi\w*)\b|肾|透析|肌酐|尿毒症", _I),
               "renal impairment kidney function creatinine clearance dialysis dose adjustment",
               re.compile(r"renal|kidney|creatinine clearance|dialysis|肾", _I), "kidney problems", "肾功能不全"),
    Population("hepatic", re.compile(r"\b(liver|hepatic|hepato\w*|cirrho\w*|hepatitis|transaminases?|alt|ast|"
                                     r"jaundice)\b|肝|转氨酶|黄疸", _I),
               "hepatic impairment liver disease cirrhosis dose adjustment",
               re.compile(r"hepatic|liver|cirrhosis|肝", _I), "liver problems", "肝功能不全"),
    Population("pregnancy", re.compile(r"pregnan|expecting a baby|trying to conceive|trimester|unborn|fetus|foetus|"
                                        r"怀孕|孕|妊娠|胎儿", _I),
               "pregnancy pregnant women fetal risk",
               re.compile(r"pregnan|fetal|fetus|孕|妊娠", _I), "pregnancy", "妊娠期"),
    Population("lactation", re.compile(r"breast[- ]?fe(?:e)?d|breast ?milk|nursing(?! homes?\b| facilit| care\b| staff)"
                                       r"|lactat|pumping|哺乳|喂奶|母乳|奶水", _I),
               "lactation breastfeeding nursing mothers human milk",
               # "breast" alone is breast cancer in half the oncology labels
               re.compile(r"breast[- ]?(?:feed|fed|milk)|lactat|nursing (?:mothers?|women|infants?)|human milk|"
                          r"哺乳|乳汁", _I), "breastfeeding", "哺乳期"),
    Population("child", re.compile(r"\b(child|children|kids?|son|daughter|toddler|infants?|baby|babies|newborns?|"
                                   r"teen\w*|pediatric|paediatric)\b|儿童|小孩|孩子|宝宝|婴|幼儿|小儿", _I),
               "pediatric patients children dose",
               re.compile(r"pediatric|paediatric|child|infant|adolescent|儿童|小儿", _I), "children", "儿童"),
    Population("elderly", re.compile(r"\b(elderly|seniors?|geriatric|grand(ma|pa|mother|father|parents?)|"
                                     r"old(er)? (man|woman|people|person|patients?|adults?))\b|老人|老年|高龄", _I),
               "geriatric elderly older patients dose",
               re.compile(r"geriatric|elderly|older (adult|patient)|aged|老年", _I), "older adults", "老年人"),
)
_NEVER = re.compile(r"(?!)")
# Topics a label often states only inside another section (storage in "How supplied" or the dosage text, overdose
# and mechanism in warnings): looked up like a population when the question asks for one and the label has no
# section for it. They come from the route's intent, never from a cue in the question (`ask` matches nothing).
TOPICS: tuple[Population, ...] = (
    Population("storage", _NEVER, "store at room temperature refrigerate protect from light storage",
               re.compile(r"\bstored?\b|storage|refrigerat|room temperature|°\s?[CF]\b|贮藏|储存|保存|遮光|密封", _I),
               "storage", "贮藏"),
    Population("overdosage", _NEVER, "overdose overdosage symptoms treatment of overdose",
               re.compile(r"overdos|过量", _I), "overdose", "药物过量"),
    Population("pharmacology", _NEVER, "mechanism of action pharmacokinetics half-life metabolism",
               re.compile(r"mechanism|half[- ]life|metaboli[sz]|pharmacokinetic|药理|机制|半衰期|代谢", _I),
               "its mechanism", "药理作用"),
)
BY_KEY = {p.key: p for p in (*POPULATIONS, *TOPICS)}
# route intent → the population or topic passage that answers it when the label lacks the intent's own section
INTENT_TOPIC = {"pregnancy": "pregnancy", "lactation": "lactation", "pediatric": "child", "geriatric": "elderly",
                "storage": "storage", "overdosage": "overdosage", "pharmacology": "pharmacology"}
MAX_POPULATIONS = 2  # population passages looked up per question (the first named)
_AGE = re.compile(r"(\d{1,3})\s*(?:-|\s)?(?:years?|yrs?|yo|y/o)\b|(\d{1,3})\s*岁|(\d{1,3})\s*(?:months?|个月)|"
                  # "I'm 70", "she is 4", "aged 81": a bare number after who, not a weight, dose or count
                  r"\b(?:i'?m|i am|he'?s|she'?s|(?:he|she|who) is|aged?)\s+(\d{1,3})\b"
                  r"(?!\s*(?:%|mg|mcg|µg|g\b|kg|lbs?|pounds?|ml|units?|weeks?|days?|hours?|times|tablets?|pills?|cm|"
                  r"mm|ft|feet|inch|[.,]\d))", _I)
# context that makes a general dose answer safe to give without asking first (an adult, other medicines named, …)
OTHER_CONTEXT = re.compile(r"\b(adults?|weigh\w*|kg|lbs?|also tak\w*|other (drugs?|medicines?|medications?))\b|"
                           r"成人|体重|公斤|同时(服|吃|用)|其他药", _I)


def populations(text: str) -> list[str]:
    """Population keys the text mentions (an age sets child below 18 and elderly from 65)."""
    found = [p.key for p in POPULATIONS if p.ask.search(text)]
    for m in _AGE.finditer(text):
        if m.group(3):  # an age in months: a baby
            found.append("child")
            continue
        age = int(m.group(1) or m.group(2) or m.group(4))
        if age < 18:
            found.append("child")
        elif age >= 65:
            found.append("elderly")
    return list(dict.fromkeys(found))


def gives_context(text: str) -> bool:
    """True when the text already says who takes the drug, so a clarifying question is not needed."""
    return bool(populations(text)) or bool(_AGE.search(text)) or bool(OTHER_CONTEXT.search(text))
