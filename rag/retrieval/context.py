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


# ASCII word boundaries: in mixed text ("eGFR只有25", "吃X副作用") a Chinese character is a \w to Python's
# default \b, which then never ends an English word
_I = re.I | re.A
POPULATIONS: tuple[Population, ...] = (
    Population("renal", re.compile(r"\b(kidneys?|renal|(?:h[a]?emo|peritoneal )?dialy[sz]\w*|creatinine|crcl|e?gfr|"
                                    r"nephr\w*|uraemi\w*|uremi\w*|ckd|esrd)\b|肾|透析|肌酐|尿毒症", _I),
               "renal impairment kidney function creatinine clearance dialysis dose adjustment",
               re.compile(r"renal|kidney|creatinine clearance|dialysis|肾", _I), "kidney problems", "肾功能不全"),
    Population("hepatic", re.compile(r"\b(liver|hepatic\w*|hepato\w*|cirrho\w*|hepatitis|transaminases?|alt|ast|"
                                     r"child[- ]?pugh|jaundice)\b|肝|转氨酶|黄疸", _I),
               "hepatic impairment liver disease cirrhosis dose adjustment",
               re.compile(r"hepatic|liver|cirrhosis|肝", _I), "liver problems", "肝功能不全"),
    Population("pregnancy", re.compile(r"pregnan|expecting a baby|trying to conceive|trimester|unborn|fetus|foetus|"
                                        r"\b(?:i'?m|i am|she'?s|she is|wife is|we'?re|we are) expecting\b|"
                                        r"\b(?:while|when|whilst) (?:i'?m |i am |i was |she'?s |she is |she was )?"
                                        r"expecting\b(?! (?:a |an |the |it\b|them\b|results?\b))|"
                                        r"\bexpectant (?:m[ou]ms?|mothers?|parents?)\b|"
                                        r"\bweeks along\b|\bm[ou]m-to-be\b|\bTTC\b|怀孕|孕|妊娠|胎儿|二胎", _I),
               "pregnancy pregnant women fetal risk",
               re.compile(r"pregnan|fetal|fetus|孕|妊娠", _I), "pregnancy", "妊娠期"),
    Population("lactation", re.compile(r"breast[- ]?fe(?:e)?d|breast ?milk|nursing(?! homes?\b| facilit| care\b| staff)"
                                       r"|lactat|pumping|post-?partum|breast ?pump"
                                       r"|\b(?:pump|express)(?:s|ed|ing)? (?:my |breast ?)?milk"
                                       # "while I'm still feeding my 6-week-old": the asker takes the drug and feeds
                                       r"|\b(?:while|when|i'?m|i am|still|currently|exclusively)\s+(?:still\s+)?"
                                       r"(?<!bottle )feeding (?:my|our|the|a|her) (?:(?:new)?born|baby|infant|"
                                       r"little one|\d+[- ]?(?:weeks?|wks?|months?|mos?|days?)[- ]old)"
                                       r"|\bnurses? (?:my|the|our|her|a) (?:baby|infant|newborn)"
                                       r"|哺乳|喂奶|母乳|奶水|月子|产后|背奶|吸奶|挤奶|泵奶", _I),
               "lactation breastfeeding nursing mothers human milk",
               # "breast" alone is breast cancer in half the oncology labels
               re.compile(r"breast[- ]?(?:feed|fed|milk)|lactat|nursing (?:mothers?|women|infants?)|human milk|"
                          r"哺乳|乳汁", _I), "breastfeeding", "哺乳期"),
    Population("child", re.compile(r"\b(child(?![- ]?pugh)|children|kids?|sons?|daughters?|toddlers?|infants?|baby|"
                                   r"babies|newborns?|teen\w*|pediatric|paediatric|preemies?|little ones?|kiddos?|"
                                   r"grand(?:sons?|daughters?|child(?:ren)?|kids?)|"
                                   r"neonat\w*|adolescents?|little (?:girl|boy)s?|preschoolers?|schoolchild(?:ren)?)\b|"
                                   r"儿童|小孩|孩子|宝宝|婴|幼儿|小儿|娃|小朋友|新生儿|早产儿|青少年|[小中]学生|"
                                   r"初中生", _I),
               "pediatric patients children dose",
               # not "Child-Pugh" (a liver score)
               re.compile(r"pediatric|paediatric|child(?![- ]?pugh)|infant|adolescent|儿童|小儿", _I), "children",
               "儿童"),
    Population("elderly", re.compile(r"\b(elderly|seniors?|geriatric|geris?|grand(ma|pa|mother|father|parents?)|"
                                     r"gran|granny|grandad|granddad|gramps|nana|nan(?='s\b|\s+(?:is|takes|has|was))|"
                                     r"pensioners?|retirees?|aged care|"
                                     r"over (?:6[5-9]|[7-9]\d)(?!\s*(?:%|mg|mcg|µg|g\b|kg|lbs?|pounds?|ml|units?|mmhg|"
                                     r"bpm|beats|days?|hours?|minutes?|times|tablets?|pills?|percent|[.,]\d))|"
                                     r"(?<!year-)(?<!year )(?<!years-)(?<!years )(?<!yr-)(?<!yr )"  # "30-year-old man"
                                     r"old(er)? (man|woman|men|women|people|person|patients?|adults?|folks?|ladies|"
                                     r"lady|gentlem[ae]n))\b|"
                                     r"老人|老年|高龄|上了年纪|年纪大|岁数大|老爷子|老太太|老大爷|老奶奶|爷爷|奶奶|外公|外婆|"
                                     r"姥姥|姥爷|古稀|耄耋|花甲|七旬|八旬|九旬|\b(?:septua|octo|nona)genarians?\b", _I),
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
               # not "pharmacokinetic(s)" alone: "the unpredictable pharmacokinetics of amiodarone" is not this
               # drug's mechanism
               re.compile(r"mechanism|half[- ]life|metaboli[sz]|药理|机制|半衰期|代谢", _I),
               "its mechanism", "药理作用"),
)
# Things people take beside a drug that are not drugs of the knowledge base: "can I drink wine on X?", "X和保健品一起吃
#有影响吗". The question names one (an exact cue, like a population); the label's sentence about it is looked up like a
# population's, wherever the label keeps it (drug interactions, warnings, the patient information), and the answer
# is routed to the label's interactions and warnings (routing: the "substance" intent). A label silent about it is
# said to be silent, never "safe".
SUBSTANCES: tuple[Population, ...] = (
    Population("alcohol", re.compile(r"\b(alcohol\w*|ethanol|booze|beers?|wines?|liquor|spirits|vodka|whiske?y|"
                                     r"cocktails?|drinking(?! water| fluids| plenty)|a drink|drinks? of)\b|"
                                     r"[和与跟]酒(?!石)|喝酒|饮酒|酒精|喝点酒|喝.{0,2}酒|白酒|"
                                     r"啤酒|红酒|葡萄酒|黄酒|喝醉|应酬", _I),
               "alcohol ethanol alcoholic beverages drinking",
               # drinking, not an excipient ("benzyl alcohol", "alcohol-free") nor 酒石酸 (tartrate)
               re.compile(r"(?<!benzyl )(?<!isopropyl )(?<!cetyl )(?<!stearyl )(?<!polyvinyl )(?<!cetostearyl )"
                          r"alcohol(?!-free)|饮酒|喝酒|酒精|含酒|酒类|忌酒|烟酒|戒酒|酒后|啤酒|白酒", _I),
               "alcohol", "饮酒"),
    Population("grapefruit", re.compile(r"grapefruit|pomelo|citrus juice|seville orange|西柚|葡萄柚|柚子", _I),
               "grapefruit juice CYP3A4", re.compile(r"grapefruit|西柚|葡萄柚", _I), "grapefruit", "西柚（葡萄柚）"),
    Population("supplements", re.compile(r"\b(supplements?|herbals?|herbs?|st\.? john'?s wort|vitamins?|"
                                         r"multivitamins?|minerals?|fish oil|ginkgo|ginseng|turmeric|melatonin|"
                                         r"natural remed\w*|otc products?)\b|保健品|补品|补剂|营养品|维生素|鱼油|"
                                         r"中药|草药|中成药|偏方|人参|银杏|钙片|褪黑素", _I),
               "herbal supplements St. John's wort vitamins dietary supplements",
               re.compile(r"\bsupplements?\b|herbal|st\.? john|\bvitamins?\b|ginkgo|ginseng|中药|保健|维生素", _I),
               "supplements and herbal products", "保健品和中草药"),
    Population("caffeine", re.compile(r"\b(caffeine|coffee|espresso|energy drinks?|cola)\b|咖啡|浓茶|喝茶|"
                                      r"茶水|功能饮料", _I),
               "caffeine coffee", re.compile(r"caffeine|coffee|咖啡|茶", _I), "caffeine", "咖啡因"),
    Population("tobacco", re.compile(r"\b(smok\w*|cigarettes?|tobacco|nicotine|vap(?:e|ing))\b|抽烟|吸烟|香烟|"
                                     r"烟草|尼古丁", _I),
               "smoking tobacco cigarette nicotine", re.compile(r"smok|tobacco|cigarette|nicotine|烟", _I),
               "smoking", "吸烟"),
    # a vaccine beside the drug ("can I get a flu shot on X?", "X和疫苗能一起打吗"): what the label says about
    # vaccination (live vaccines with immunosuppressants), not a list of other drugs
    Population("vaccines", re.compile(r"\b(vaccin\w*|flu (?:shots?|jabs?)|immuni[sz]ations?|booster (?:shots?|jabs?)|"
                                      r"(?:covid|shingles|tetanus|measles|mmr|hpv) (?:shots?|jabs?))\b|疫苗|接种", _I),
               "vaccines vaccination live vaccine immunization",
               re.compile(r"vaccin|immuniz|immunis|疫苗|接种", _I), "vaccines", "疫苗接种"),
    Population("food", re.compile(r"\b(foods?|diet|dietary|meals? to avoid|drinks to avoid|dairy|tyramine|"
                                  r"cheese)\b|食物|饮食|忌口|忌吃|忌食|吃东西|辛辣|海鲜", _I),
               "food diet avoid foods meals dairy tyramine",
               re.compile(r"\bfoods?\b(?! and drug)|\bdiet|\bmeal|dairy|tyramine|食物|饮食|忌|辛辣|生冷|油腻", _I),
               "food", "饮食"),
)
BY_KEY = {p.key: p for p in (*POPULATIONS, *TOPICS, *SUBSTANCES)}
# route intent → the population or topic passage that answers it when the label lacks the intent's own section
INTENT_TOPIC = {"pregnancy": "pregnancy", "lactation": "lactation", "pediatric": "child", "geriatric": "elderly",
                "storage": "storage", "overdosage": "overdosage", "pharmacology": "pharmacology"}
MAX_POPULATIONS = 2  # population passages looked up per question (the first named)
_WHO = (r"i'?m|i am|he'?s|she'?s|(?:he|she|who|one|kid|son|daughter|child|baby|boy|girl|mom|mum|mother|dad|father|"
        r"wife|husband|patient|grand\w+) is|turned|turning|aged?")
_AGE = re.compile(r"(?<!\bfor )(?<!\bpast )(?<!\blast )(?<!\bwithin )(?<!\bafter )(?<!\bsince )(?<!\d)"
                  # a duration, not an age: "for 2 years", "a transplant two years ago"
                  r"(\d{1,3})\s*(?:-|\s)?(?:years?|yrs?|yo|y/o)\b(?!\s+(?:ago|back|later|earlier|before|now|since|"
                  r"of (?:use|treatment|therapy|taking)))|(\d{1,3})\s*(?:多|来|几)?\s*周?岁|"
                  r"(\d{1,3})\s*-?\s*(?:months?|个月|(?:weeks?|wks?|days?)[- ]old\b|周大|天大)|"
                  # "I'm 70", "she is 4", "aged 81": a bare number after who, not a weight, dose or count
                  rf"\b(?:{_WHO})\s+(\d{{1,3}})\b"
                  r"(?!\s*(?:%|mg|mcg|µg|g\b|kg|lbs?|pounds?|ml|units?|weeks?|days?|hours?|times|tablets?|pills?|cm|"
                  r"mm|ft|feet|inch|[.,]\d))|"
                  # "年过60", "今年75", "我妈80了"
                  r"(?:年过|年近|今年|已经)\s*(\d{1,3})|(?:我|俺|咱|他|她|妈|爸|爹|娘|奶奶|爷爷|姥姥|姥爷|外婆|外公|公公|婆婆|岳父|岳母|老人|老爷子|老太太|老头|老伴|大爷|大妈)\D{0,3}?(\d{2,3})\s*(?:多|来)?\s*了|"
                  # "in my 80s", "a 70-something"
                  r"\bin (?:my|his|her|their|your) (\d)0'?s\b|\b(\d)0[- ]?something\b", _I)
_EN_TENS = {w: 10 * i for i, w in enumerate(("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                                "ninety"), 2)}
_EN_UNITS = {w: i for i, w in enumerate((
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"), 1)}
_TENS, _ONES, _ALL = "|".join(_EN_TENS), "|".join(list(_EN_UNITS)[:9]), "|".join(_EN_UNITS)
_EN_NUMBER = re.compile(rf"\b(?:({_TENS})(?:[- ]({_ONES}))?|({_ALL}))\b"
                        rf"|\b({'|'.join(w[:-1] for w in _EN_TENS)})ies\b", _I)
_ZH_DIGIT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# a Chinese numeral where an age goes: before 岁 or "个月大", or after 年过/今年 ("七十二岁", "六十多岁", "年过六十");
# not "一个月吃几盒"
_ZH_NUMBER = re.compile(r"(?<=年过|年近|今年|已经)([一二两三四五六七八九十]{1,3})|"
                        r"([一二两三四五六七八九十]{1,3})(?=\s*(?:多|来|几)?\s*周?岁|个月(?:大|的(?:宝宝|孩子|婴儿|小孩)))|"
                        # "八十多了", "七十了": tens of years said without 岁
                        r"([一二三四五六七八九]?十[一二三四五六七八九]?)(?=(?:多|来)?了)")


def _en_number(m: re.Match[str]) -> str:
    if m.group(4):  # "seventies": the middle of the decade
        return f"{_EN_TENS[m.group(4).lower() + 'y'] // 10}0s"
    if m.group(3):
        return str(_EN_UNITS[m.group(3).lower()])
    return str(_EN_TENS[m.group(1).lower()] + (_EN_UNITS[m.group(2).lower()] if m.group(2) else 0))


def _zh_number(m: re.Match[str]) -> str:
    w = m.group(1) or m.group(2) or m.group(3)
    if "十" not in w:
        return str(_ZH_DIGIT[w]) if len(w) == 1 else w
    tens, _, units = w.partition("十")
    if len(tens) > 1 or len(units) > 1:
        return w
    return str(10 * (_ZH_DIGIT.get(tens, 1) if tens else 1) + (_ZH_DIGIT.get(units, 0) if units else 0))


def ages(text: str) -> list[tuple[int, bool]]:
    """(age, in months?) for each age the text gives, in digits or words ("seventy-two", "七十二岁", "in my 80s")."""
    text = _ZH_NUMBER.sub(_zh_number, _EN_NUMBER.sub(_en_number, text))
    out: list[tuple[int, bool]] = []
    for m in _AGE.finditer(text):
        if m.group(3):
            out.append((int(m.group(3)), True))
        elif m.group(7) or m.group(8):  # a decade: its middle
            out.append((int(m.group(7) or m.group(8)) * 10 + 5, False))
        else:
            out.append((int(next(g for g in (m.group(1), m.group(2), m.group(4), m.group(5), m.group(6)) if g)), False))
    return out


# context that makes a general dose answer safe to give without asking first (an adult, other medicines named, …)
OTHER_CONTEXT = re.compile(r"\b(adults?|weigh\w*|also tak\w*|other (drugs?|medicines?|medications?))\b|"
                           r"(?<![a-z])(kg|lbs?)\b|"
                           r"成人|体重|公斤|同时(服|吃|用)|其他药", _I)


# the baby of a nursing or pregnant mother ("can X harm my baby through breast milk", "nurse my 4 month old")
_BABY = re.compile(r"\b(?:baby|babies|infants?|newborns?|little ones?)\b|宝宝|婴儿?|孩子|小孩", _I)


def populations(text: str) -> list[str]:
    """Population keys the text mentions (an age sets child below 18 and elderly from 65). Beside breastfeeding or
    pregnancy, a baby (or an age in months) is the nursing or unborn child, not a child who takes the drug."""
    found = [p.key for p in POPULATIONS if p.ask.search(text)]
    years = False
    for age, months in ages(text):
        if months or age < 18:  # an age in months: a baby
            found.append("child")
            years = years or not months
        elif age >= 65:
            found.append("elderly")
    if "child" in found and ({"lactation", "pregnancy"} & set(found)) and not years \
            and not BY_KEY["child"].ask.search(_BABY.sub(" ", text)):
        found = [k for k in found if k != "child"]
    return list(dict.fromkeys(found))


def substances(text: str) -> list[str]:
    """Substance keys (alcohol, grapefruit, supplements, …) the text names, in SUBSTANCES order."""
    return [s.key for s in SUBSTANCES if s.ask.search(text)]


def gives_context(text: str) -> bool:
    """True when the text already says who takes the drug, so a clarifying question is not needed."""
    # a population named, or any age (populations() only keeps those under 18 or from 65)
    return any(p.ask.search(text) for p in POPULATIONS) or bool(ages(text)) or bool(OTHER_CONTEXT.search(text))


# A drug the asker (or the patient) already takes, named as background to a question about another one ("I'm already on
# metformin, what is naproxen used for?", "my mum takes warfarin; side effects of omeprazole?",
# "我平时吃二甲双胍，布洛芬怎么吃"): the words just before its name say it is taken ("on", "takes", "taking", 在吃,
# 平时吃, 正在服用), not asked about ("can I take X", "X的用法").
_BACKGROUND_BEFORE = re.compile(
    r"(?:\b(?:i'?m|i am|he'?s|she'?s|he is|she is|they'?re|we'?re|is|are|been|was|were|already|currently|also|still|"
    r"now|who'?s|who is)\s+(?:already\s+|currently\s+|also\s+|still\s+|now\s+)?(?:on|taking|using)|"
    r"(?<!can )(?<!could )(?<!should )(?<!would )(?<!may )(?<!do )(?<!does )(?<!will )(?<!to )"
    r"\b(?:i|he|she|they|we|mum|mom|dad|father|mother|wife|husband|grandma|grandpa|son|daughter)\s+(?:already\s+|"
    r"also\s+|still\s+|regularly\s+)?(?:takes?|uses?)|\bprescribed|\b(?:and|also|plus)\s+(?:also\s+)?(?:take|takes|"
    r"taking)|\b(?:besides|apart from|other than|as well as)(?:\s+(?:taking|my|his|her))?|"
    r"\b(?:patient|pt|mom|mum|mother|dad|father|wife|husband|man|woman|lady|guy|someone|somebody|person|people|"
    r"grandma|grandpa|grandmother|grandfather)s?\s+(?:already\s+|currently\s+|also\s+)?on|"
    r"(?:^|[,;(—–-])\s*(?:already\s+|currently\s+|also\s+)?on)"
    r"\s+(?:(?:my|his|her|their|a|the|daily|regular|low-dose|baby|\d+\s*(?:mg|mcg))\s+){0,2}$"
    r"|(?:在吃|平时吃|平常吃|一直吃|一直在吃|正在吃|长期吃|常吃|天天吃|每天吃|吃着|在服|在服用|服用着|正在服用|长期服用|一直服用|"
    r"平时服用|在用|正在用|一直用|长期用|在打|平时打|一直打|每天打|长期打|除了|除)(?:着)?$", _I)


def background_mentions(text: str, mentions: list[str]) -> set[str]:
    """The drug mentions (as written in `text`) that the text names as already taken (module note above)."""
    low = text.lower()
    out: set[str] = set()
    for m in mentions:
        i = low.find(m.lower())
        if i > 0 and _BACKGROUND_BEFORE.search(low[max(0, i - 40): i]):
            out.add(m)
    return out


_CLAUSES = re.compile(r"(?<=[.!?;:。！？；：，,—–])\s*|\s+[-–—]\s+")


def without_background(text: str, taken: set[str]) -> str:
    """`text` less its clauses that name a drug already taken ("I take sertraline every day. Are there any conditions
    in which X must never be used?" → the second sentence): what is asked about the other drug. The text unchanged
    when every clause names one."""
    parts = [p for p in _CLAUSES.split(text) if p.strip()]
    low = [p.lower() for p in parts]
    kept = [p for p, lp in zip(parts, low, strict=True) if not any(m.lower() in lp for m in taken)]
    return " ".join(kept) if kept and len(kept) < len(parts) else text
