"""Question intent → label sections: the semantic classifier's distribution (rag.retrieval.intent) fused with a few
exact lexical cues, turned into a route (the intent, its sections in order) and a soft prior over sections.

The cues below are kept where a phrase is exact ("boxed warning", "黑框", "side effect", "禁忌"): each adds a bonus to
its intent's probability; it never decides alone when the classifier is there. Without a classifier (no embedder,
e.g. some unit tests) the first matching cue decides, as before. One rule decides alone in both modes: an exact
request that the assistant prescribe (`asks_to_prescribe`); other request wordings are the request classifier's. Two
safety rules come before it: self-harm intent (`asks_self_harm`) and drug misuse (`asks_misuse`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.retrieval.context import INTENT_TOPIC, POPULATIONS, SUBSTANCES

# common symptoms a side-effect question names ("can X make you dizzy?", "老人吃X会不会头晕"): with a word that puts the
# symptom down to the drug, they say the question is about its adverse reactions even when a patient context the
# question also gives pulls the classifier to that population ("my 80-year-old mom … confused from X")
_EN_SYMPTOMS = (r"dizz\w*|light-?headed|drows\w*|sleepy|tired|fatigue\w*|exhausted|nause\w*|vomit\w*|throw(?:ing)? up|"
                r"sick to (?:my|the|her|his) stomach|upset stomach|stomach (?:ache|pain|upset)s?|heartburn|headaches?|"
                r"migraines?|confus\w*|forgetful|constipat\w*|diarrh\w*|the runs|rash\w*|itch\w*|hives|insomnia|"
                r"(?:can'?t|cannot|trouble) sleep\w*|weight gain|gain(?:ing)? weight|hair loss|"
                r"los(?:e|ing) (?:my |her |his )?hair|dry mouth|a cough|coughing|swell\w*|swollen|palpitations|"
                r"(?:muscle|joint) (?:pain|aches?)|"
                r"bruis\w*|blurr\w* vision|ringing in (?:my|the|her|his) ears|shaky|tremors?|nightmares|mood swings|"
                r"depressed|anxious|jittery")
_ZH_SYMPTOMS = (r"头晕|头昏|头疼|头痛|恶心|想吐|呕吐|拉肚子|腹泻|便秘|皮疹|起疹|出疹|瘙痒|痒|失眠|睡不着|犯困|"
                r"嗜睡|乏力|没力气|心慌|心悸|脱发|掉头发|掉发|肌肉痛|肌肉疼|肌肉酸痛|水肿|浮肿|咳嗽|干咳|口干|发胖|长胖|变胖|体重增加|胃疼|"
                r"胃痛|胃不舒服|肚子痛|肚子疼|腹痛|耳鸣|视力模糊|手抖|抽筋|出血|瘀青|过敏")
_EN_BLAME = r"\b(?:make|makes|made|making|cause|causes|caused|causing|give|gives|gave|giving|lead to|leads to|" \
            r"result in|trigger|triggers)\b"
# "get"/"feel" put the symptom down to the drug only with it said ("get confused from X", "feel sleepy on X"): "can I
# take X if I get headaches?" names the patient's complaint
_EN_ON_IT = (r"(?:\s+\w+){0,2}?\s+(?:from|on|after|since|with|taking|while taking)\s+"
             r"(?:starting\s+|taking\s+|using\s+)?(?:X|it|this|that|these|them|the|my)\b")

# intent → (cue regex, sections to search in order). Without a classifier, the first matching cue is the intent.
_RULES: list[tuple[str, str, list[str]]] = [
    ("boxed_warning", r"box(?:ed)? warning|black[- ]?box|\bBBW\b|黑框", ["boxed_warning", "warnings"]),
    (
        "interaction",
        r"interact|together with|at the same time|combine|combination with|along with|mix(ed|ing)? with|"
        r"take .+ (and|with) .+|相互作用|一起(吃|服|用)|同时(吃|服|用)|同服|合用|联用|并用|配伍|一块|"
        # which other drugs to keep away from ("which meds clash with X", "用X的时候哪些药不能碰")
        r"\b(?:which|what) (?:other )?(?:drugs|meds|medications|medicines|pills) (?:should|to avoid|can'?t|must|"
        r"shouldn'?t|not|clash|conflict|interfere)|\bclash|\bconflicts? with|"
        r"(?:哪些|什么|啥|别的|其他)(?:其他|别的)?药(?:物)?[^，。？！]{0,6}?(?:不能|不要|别|不宜|不可|避免|相冲|冲突|犯冲)|"
        r"相冲|冲突|犯冲|\bDDIs?\b|"
        # a class of drugs taken beside it ("X isn't safe with blood thinners, right?", "X and antacids")
        # or that the asker is on ("my dad is on a blood thinner and …", "I take antidepressants, is X ok"), and
        # "that combination" / "the combo"
        r"\b(?:th(?:at|is|ose|ese) (?:combination|combo)s?|combining)\b|"
        r"\b(?:(?<!used )(?<!given )(?:with|and|plus|alongside)|(?:is|am|are|i'm|he's|she's|been) on|taking|takes?|"
        r"using)\s+(?:other\s+|my\s+|a\s+|an\s+|his\s+|her\s+|some\s+)?(?:blood thinners?|anticoagulants?|"
        r"antidepressants?|antacids?|nsaids?|maois?|ssris?|diuretics?|statins?|antibiotics?|birth control|painkillers?|"
        r"pain (?:killers?|relievers?)|sedatives?|sleeping pills?|opioids?|antihistamines?|steroids?|"
        r"blood pressure (?:meds|medicines?|medications?|pills))\b",
        ["interactions", "warnings", "contraindications"],
    ),
    # one drug and something taken beside it that is not a drug of the KB (alcohol, grapefruit, supplements, coffee,
    # smoking, food; rag.retrieval.context.SUBSTANCES): the label's interactions, then its warnings; the sentence
    # that names the substance is fetched on its own
    ("substance", "|".join(f"(?:{s.ask.pattern})" for s in SUBSTANCES), ["interactions", "warnings",
                                                                         "contraindications"]),
    (
        "contraindications",
        r"contraindicat|who should not|should not (take|use)|must not|not be (used|taken)|can't take|"
        r"never be (?:used|taken|given)|should never (?:take|use|be)|"
        r"cannot take|(?:can'?t|cannot|can not|must never) be (?:given|used|taken|prescribed)|off[- ]limits?|"
        r"\bCIs?\b|(?:not|n't) (?:supposed|meant|allowed) to (?:take|use|be on)|"
        r"\bwho (?:must|should|needs? to|has to) avoid|shouldn'?t (?:take|use|be on)|"
        r"禁忌|(?<!能)不能(使?用|吃|服|碰)|不(?:可|得)使?用|碰不得|不宜|禁用|哪些人不",
        ["contraindications", "warnings", "boxed_warning"],
    ),
    # a population question ("can my 10-year-old be given X?", "还在喂母乳，X能吃吗") asks whether the drug may be used
    # at all: after the population's own section, the label's contraindications, then its warnings (the passage
    # about the population is fetched on its own, rag.retrieval.passages.population_hits)
    ("pregnancy", r"pregnan|expecting a baby|孕|妊娠|怀孕", ["pregnancy", "contraindications", "warnings"]),
    ("lactation", r"breast|nursing|lactat|哺乳|母乳|喂奶", ["lactation", "contraindications", "warnings"]),
    (
        "pediatric",
        r"\bchild|pediatric|paediatric|infant|kids?\b|儿童|小儿|婴|幼儿|孩子",
        ["pediatric", "contraindications", "warnings"],
    ),
    ("geriatric", r"elderly|geriatric|\bgeris?\b|seniors?\b|older (adult|patient|people)|老年|老人",
     ["geriatric", "contraindications", "warnings"]),
    (
        "overdosage",
        r"overdos|too much|t(?:aken|ook) too many|(?:double|extra) dose|accident\w*ly (?:took|taken|swallowed|gave)|"
        r"took (?:it |them |my \w+ |\w+ )?twice(?! (?:a|per|every|each|daily)\b)|doubled up|"
        r"过量|超量|(?:吃|服|用|喝|打|涂)多了|多(?:吃|服|用)了|误服|(?:吃|服)了两(?:次|遍|回)|重复(?:吃|服)了",
        ["overdosage", "warnings"],
    ),
    (
        "adverse_reactions",
        r"side[- ]effect|adverse|reaction|undesirable|untoward|\bADRs?\b|\bAEs\b|不良反应|副作用|副反应|"
        r"(?:有|会有|出现)(?:什么|哪些|啥)(?:不适)?反应|"
        # a symptom put down to the drug ("since starting X I feel tired, could that be the medicine?",
        # "用了X以后拉肚子是药的原因吗")
        r"could (?:that|it|this) be (?:the|my|from the) (?:medicine|medication|drug|pills?|tablets?)|"
        r"(?:caused|because) (?:by|of) (?:the|my|this) (?:medicine|medication|drug|pills?)|"
        r"is (?:that|this|it) a (?:known |common |normal )?side|"
        r"is (?:that|this) normal|is it normal(?! to)|"
        r"是(?:不是)?(?:这个?|该)?(?:药|吃药|用药)(?:的原因|引起|导致|的副作用|的问题)|药的原因|(?:跟|和|与)(?:这|该|这个)?(?:药|药物)有关|(?:以后|之后)[^，。？！?]{0,10}正常吗|"
        r"(?:" + _ZH_SYMPTOMS + r")[^，。？！?]{0,6}(?:正常吗|怎么回事|是药)|"
        r"(?:会不会|会|容易|易|可能|引起|导致|造成|令人|让人|使人)[^，。？！?]{0,4}?(?:" + _ZH_SYMPTOMS + r")|"
        + _EN_BLAME + r"(?:\s+\S+){0,4}?\s+(?:so |very |really |more |a bit |kind of |kinda |a lot of |any )?(?:"
        + _EN_SYMPTOMS + r")\b|"
        r"\b(?:get|gets|got|getting|feel|feels|felt|feeling)\s+(?:so |very |really |more |a bit |kind of |kinda )?(?:"
        + _EN_SYMPTOMS + r")" + _EN_ON_IT,
        ["adverse_reactions", "warnings", "boxed_warning"],
    ),
    (
        "dosage",
        r"\bdos(e|es|age|ing)\b|how (much|many|often|long|to (take|use))|how (should|do|can|would) (i|you|we|"
        r"he|she|they) (take|use|give)|how (?:should|is|are|do(?:es)?) (?:X|it) (?:be )?(?:given|taken|administered)|"
        r"administ|max(imum)? daily|剂量|用法|用量|怎么(吃|服|用)|如何(服用|使用)|一次|"
        r"一日|每天|几次|多少|减量|加量|减半|empty stomach|"
        # a missed dose ("should I double up?" is what to do about it, not an overdose)
        r"\bmiss(?:ed|ing)? (?:a |my |the |one )?(?:morning |evening |night |\w+(?:'s| s) )?(?:dose|pill|tablet|X\b)|"
        r"\bforg[eo]t(?:ten)? (?:to take|my)|"
        r"\bskip(?:ped)? (?:a |my |the )?dose|漏服|漏吃|忘(?:了|记)(?:吃|服)|"
        r"with (?:food|meals?|dairy|(?:an? (?:full )?glass of )?(?:water|milk|juice))|"
        r"(?:before|after) (?:meals|food|eating)|空腹|饭前|饭后|餐前|餐后|送服|牛奶|果汁|"
        # how a tablet or capsule may be taken: split, crushed, chewed, opened, swallowed whole, dissolved
        r"\b(?:split|splitting|crush|crushed|crushing|chew|chewed|chewing|"
        r"dissolved? (?:it |them |the \w+ )?in (?:water|juice|liquid|milk)|cut (?:it |them |\w+ )?in half|"
        r"break (?:it|them|the \w+) in half|swallow(?:ed)? (?:it |them )?whole|open (?:the|a|my) capsules?)\b|"
        r"掰开|掰成|嚼碎|嚼着|咀嚼|压碎|碾碎|研碎|磨碎|整片|整粒|吞服|拆开|打开胶囊|胶囊.{0,4}(?:打开|拆开)|溶于水|泡水",
        ["dosage"],
    ),
    # a safety question is answered with the precautions, the boxed warning and who must not take it at all
    # (alcohol, beer, 喝酒 … are substance cues above, not safety words of their own)
    ("warnings", r"warning|precaution|caution|careful|注意事项|注意|警告|慎用|讲究|(?<!不)小心",
     ["warnings", "boxed_warning", "contraindications"]),
    ("storage", r"\bstor(e|age)\b|shelf|keep it|fridge|refrigerat|stay (?:cold|cool)|room temp|go(?:es)? bad|expir|"
     r"(?:after|once|since) (?:i |it was |being )?open(?:ed|ing)\b|"
     r"贮藏|储存|保存|存放|冷藏|放冰箱|保管|怕热|避光|开封|过期",
     ["storage"]),
    ("ingredients", r"ingredient|contain|what(?: i|')s (?:in|inside)|made (?:of|from|with)|excipient|\bgluten|"
     r"lactose|vegan|sugar[- ]free|\bdyes?\b|preservative|成分|含有|辅料|防腐剂|含糖|乳糖|麸质|色素|明胶|含不含|是否含",
     ["ingredients"]),
    (
        "pharmacology",
        r"mechanism|how does .+ work|pharmacolog|half[- ]life|\bmoa\b|t1/2|t½|药理|作用机制|机理|半衰期|"
        r"(?:what|which) (?:kind|class|type) of (?:drug|medicine|medication)|at the cellular level|biologically|"
        r"stay in (?:your|my|the) (?:system|body)|start working|kick in|"
        r"哪类药|哪一类药|什么类型的药|属于什么药|起效|怎么起作用|作用原理|药代",
        ["pharmacology"],
    ),
    (
        "indications",
        r"used for|use[ds]? of|what is .+ for|(?<!contra)indicat|treat|purpose|good for|what does .+ do|"
        r"meant (?:for|to)|"
        r"what \S+(?: \S+){0,3} is for\b|what it'?s for\b|point of taking|what (?:problem|condition|illness|"
        r"disease)(?:e?s)? (?:does|is|are|would)|"
        r"适应症|适应证|适应|干嘛用|干啥用|做什么用|啥用|治啥|(?<![血气导插])管(?:什么|啥|哪些)(?:的|用|病)|"
        r"功能主治|"
        r"主治|主要用于|治疗|用途|治什么|干什么|有什么用|(?<![副互])作用|功效|用于",  # not 副作用 / 相互作用
        ["indications"],
    ),
    (
        "disease_drugs",
        r"what (drug|medicine|medication)s? (for|to take|treat)|which (drug|medicine|medication)s?|吃什么药|"
        r"用什么药|推荐.*药|什么药",
        [],
    ),
]
_COMPILED = [(name, re.compile(rx, re.I | re.A), secs) for name, rx, secs in _RULES]  # ASCII \b (context.py)

# Requests addressed to the assistant to prescribe: imperative or "can you …", a prescription word nearby; Chinese
# 给我/帮我/你…开 (not 开了/开的/开车). A clause that names the prescriber (my doctor, 医生, 医院 …) reports a
# prescription instead and is left to the classifier. The classifier still catches every other wording.
_RX_WORD = (r"(?:e-?|electronic\s+)?(?:prescription|perscription|presciption|rx|script)s?"
            r"(?:\s+(?:note|slip|order|form|pad)s?)?\b")
_RX_VERB = (r"(?:write|give|issue|send|make|generate|draft|authori[sz]e|fax|renew|refill|do|put\s+(?:in|through)|"
            r"call\s+in)")
_PLAN = r"(?:treatment|medication|medicine|drug|dosing|dose)\s+(?:plan|regimen|schedule)"
# the prescription itself as the object ("write me a new script for X", "give my dad a prescription"), not a modifier
# ("give me prescription info", "a list of prescription sleep aids")
_RX_OBJ = (r"(?:\s+(?:me|us|him|her|them|my\s+\w+|out|up))?\s+(?:(?:a|an|another|new|my|our|his|her|the|\d+)\s+)?"
           r"(?:(?:new|repeat|refill|\d+[- ]day|month'?s?)\s+)?")
_RX_END = r"(?=\s*(?:[.!?,;:]|$|(?:for|of|to|that|so|with|please|pls|now|today|asap|again|refill|renewal)\b))"
_ZH_WHO = (r"(?:我|俺|咱|我们|他|她|孩子|宝宝|我[妈爸儿女老奶爷姥家][妈爸子儿婆公奶爷姥人]?|"
           r"我?(?:父母|家人|母亲|父亲|爱人|丈夫|妻子))")
_ZH_OPEN = r"(?:开(?![了过的着车始封水关心学会门窗导]|玩笑)|开具)"  # 开 as prescribing, not 开车/开始/开封/打开
_ZH_TAIL = r"[^，。？！,.?!]{0,40}?(?:处方|药方|方子|药)"
_RX_EXACT = [
    re.compile(r"(?:^|[.!?,;:]\s*|\b(?:please|pls|just|now|so|and|then)\s+)" + _RX_VERB + _RX_OBJ +
               r"(?:" + _RX_WORD + _RX_END + "|" + _PLAN + ")", re.I),
    re.compile(r"\b(?:can|could|would|will|won'?t)\s+(?:you|u)\s+(?:please\s+|just\s+|kindly\s+)?" + _RX_VERB +
               _RX_OBJ + r"(?:" + _RX_WORD + _RX_END + "|" + _PLAN + ")", re.I),
    re.compile(r"(?:^|[.!?,;:]\s*|\b(?:please|pls|and)\s+)(?:prescribe|presribe|perscribe)\b", re.I),
    re.compile(r"\b(?:you|u|just|now|so|then)\s+(?:\w+\s+)?(?:prescribe|presribe|perscribe)\s+(?:me|us|him|her|them|"
               r"my|our|something|anything|(?:[\w-]+\s+){0,4}?for\s+(?:me|us|my|him|her))\b", re.I),
    re.compile(r"\bi\s*(?:need|want|would like|'d like|’d like)\s+you\s+to\s+(?:prescribe|write\b[^.?!]{0,30}?"
               + _RX_WORD + ")", re.I),
    re.compile(r"(?<![会么啥])(?:给|帮|替|为)" + _ZH_WHO + _ZH_OPEN),
    re.compile(r"(?:给|帮|替)" + _ZH_WHO + r"(?:写|出|续)(?:个|一个|张|一张|份)?(?:处方|药方|方子|方)"),
    re.compile(r"(?:给|帮|替)" + _ZH_WHO + r"(?:定|制定|做|出|开|拟)(?:个|一个|份)?(?:用药|治疗|吃药)(?:方案|计划)"),
    re.compile(r"(?:你|您)(?:能|能不能|可以|可不可以|帮|来|就|直接|给|帮我|给我|替我)*" + _ZH_OPEN +
               r"(?:个|一个|张|一张|点|些)?" + _ZH_TAIL),
    # 续方 / 续药: renewing a prescription ("我要续方，氨氯地平"); a clause naming the prescriber reports one
    re.compile(r"(?:我|我们|俺|给我|帮我|替我|请|麻烦)[^，。？！,.?!]{0,4}?(?:续方|续药|续处方|续开|续一下)"),
    re.compile(r"(?:请(?![问教])|麻烦|劳驾)(?:你|您)?(?:给|帮|替)?[^，。？！,.?!\s问打]{0,3}?" + _ZH_OPEN +
               r"(?:个|一个|张|一张|点|盒|一盒|瓶|一瓶)?" + _ZH_TAIL),
]
_PRESCRIBER = re.compile(r"\b(?:doctor|dr|physician|gp|nurse|dentist|vet|specialist|pharmacist|optometrist|"
                         r"midwi(?:fe|ves)|they|he|she|clinic|hospital|urgent care|er|pharmac(?:y|ies)|\w+ologist|"
                         r"\w+iatrician|\w+iatrist)s?\b|医生|大夫|医师|医院|门诊|诊所|药师|药店|药房|急诊|社区|"
                         r"(?:皮肤|牙|内|外|妇|儿|眼|骨|专|心内|精神)科|他们|她们", re.I)
_CLAUSE = re.compile(r"[.!?;,，。！？；\n]")
# the assistant cast as the prescriber ("you're my doctor", "pretend to be a GP", "你就是我的医生"): still a request
_ROLE_PLAY = re.compile(r"\b(?:you(?:'re|\s+are)|be|as|pretend|act|role-?play|imagine)\b[^.?!]{0,20}?\b(?:doctor|dr|"
                        r"physician|gp)\b|(?:你|您)(?:就|现在)?(?:是|当|作为|扮演)[^，。？！]{0,4}?(?:医生|大夫|医师)|"
                        r"(?:假装|扮演|当作|作为)[^，。？！]{0,4}?(?:医生|大夫|医师)", re.I)


# Safety rules that decide alone, before any classifier: someone who may harm themselves gets crisis resources, not a
# pill count; a request to make drugs or get high from a medicine is refused. Written for first-person intent, so a
# question about a label's warning ("can sertraline cause suicidal thoughts?", "X会导致自杀倾向吗") is still answered.
_SELF_HARM = re.compile(
    r"\bkill(?:ing)?\s+my\s?self\b|\bend(?:ing)?\s+(?:my\s+life|it\s+all)\b|\btake\s+my\s+(?:own\s+)?life\b|"
    r"\b(?:want|wanna|going|plan\w*|trying|try|ready|decided|mean)\s+to\s+(?:die|commit\s+suicide|kill\s+myself|"
    r"end\s+(?:my\s+life|it\s+all)|overdose|od)\b|\bi(?:'m|\s+am)\s+(?:suicidal|going\s+to\s+kill)\b|"
    r"\boverdos\w*\s+on\s+purpose\b|\b(?:lethal|fatal|deadly)\s+(?:dose|amount|number)\b|"
    r"\bhow\s+many\b[^.?!]{0,40}?\b(?:to\s+die|to\s+kill|would\s+kill|will\s+kill|kill\s+me|be\s+(?:fatal|lethal))\b|"
    r"\bhurt(?:ing)?\s+my\s?self\b|\bdon'?t\s+want\s+to\s+(?:live|be\s+alive|wake\s+up)\b|"
    r"我?(?:想|想要|要|打算|准备)自杀|想死|不想活|轻生|寻死|自尽|结束(?:我的|自己的)?生命|了结自己|致死量|"
    r"(?:吃|服|喝)多少[^，。？！,.?!]{0,6}?(?:会|能|才能|就能|可以)?(?:死|致死|没命)|伤害自己", re.I)
_MISUSE = re.compile(
    r"\b(?:make|cook|synthesi[sz]e|extract|brew)\w*\s+(?:\w+\s+){0,2}?(?:meth|methamphetamine|crystal)\b|"
    r"\b(?:meth|methamphetamine)\s+(?:\w+\s+){0,2}?from\b|\bget(?:ting)?\s+high\b|\bsnort(?:ing)?\b|"
    r"制毒|冰毒|提炼[^，。？！]{0,6}(?:麻黄碱|伪麻黄碱)|(?:做|制|提取)(?:毒品|冰毒)|溜冰", re.I)


def asks_self_harm(text: str) -> bool:
    """The asker may mean to harm themselves ("I want to overdose on X", "X吃多少会死")."""
    return bool(_SELF_HARM.search(text))


def asks_misuse(text: str) -> bool:
    """A request to make illegal drugs from a medicine, or to get high on one."""
    return bool(_MISUSE.search(text))


# the assistant cast as the prescriber, strictly ("you're the doctor now", "be my GP", "你现在是医生"; not "as my doctor
# said"), and what the asker wants handed over ("I need X", "give me X", "我要X"; not "I need to know", "给我讲讲").
# _ROLE_PLAY above is the looser twin on purpose: it only removes a casting from a clause before the prescriber check,
# where matching too much costs nothing; _CAST decides a refusal alone, so it must not match "as my doctor said".
_CAST = re.compile(r"\b(?:you(?:'re|\s+are)(?:\s+now)?|be|pretend(?:\s+to\s+be|\s+you(?:'re|\s+are))?|act\s+as|"
                   r"role-?play\s+as|imagine\s+you(?:'re|\s+are))\s+(?:my\s+|a\s+|an\s+|the\s+)?(?:\w+\s+)?(?:doctor|"
                   r"physician|gp|prescriber)\b|(?:你|您)(?:就|现在)?(?:是|当|作为|扮演)[^，。？！]{0,4}?(?:医生|大夫|医师)"
                   r"(?!吗)|(?:假装|扮演|假设你是|假如你是|如果你是)[^，。？！]{0,4}?(?:医生|大夫|医师)", re.I)
_WANTS = re.compile(r"\bi\s*(?:really\s+|just\s+)?(?:need|want|would like|'d like)\b(?!\s+to\b)|"
                    r"\b(?:give|get|send)\s+me\b|\bmake it official\b|"
                    r"我(?:就|只)?(?:要|需要|想要)(?!知道|了解|问|查)|给我(?!讲|说|介绍|解释|查)", re.I)


def asks_to_prescribe(text: str) -> bool:
    """An exact request that the assistant prescribe ("write me a prescription for X", "给我开点X"), not a report of
    a prescription ("my doctor prescribed X", "医生给我开了X"); or the assistant cast as the doctor and asked to hand
    a drug over ("You're the doctor now. I need X", "你现在是医生，我要X")."""
    if _CAST.search(text) and _WANTS.search(text):
        return True
    for rx in _RX_EXACT:
        for m in rx.finditer(text):
            clause = _ROLE_PLAY.sub(" ", _CLAUSE.split(text[: m.start()])[-1] + text[m.start():m.end()])
            if not _PRESCRIBER.search(clause):
                return True
    return False


# Whether a drug needs a prescription is a question about the drug, not a request for one ("do I need a prescription
# for X?", "is X prescription-only?", "X是处方药吗", "买X要处方吗"): the request classifier does not score such a
# question whole (only its later clauses that address the assistant). Its words sit close to requests ("I need a
# prescription for X"), which the labelled examples hold many of.
_RX_STATUS = re.compile(
    r"\b(?:do|does|will|would|should)\s+(?:i|you|one|we|people|they|he|she|my \w+)\s+(?:still\s+|really\s+)?"
    r"(?:need|require)\s+(?:a\s+|an\s+)?(?:prescription|script|rx)\b"
    r"|\bprescription[- ]only\b|\bis\s+(?:a\s+)?prescription\s+(?:required|needed|necessary)\b"
    r"|\b(?:require|need)s\s+(?:a\s+)?prescription\b|\bdoes\s+\S+(?:\s+\S+)?\s+(?:need|require)\s+(?:a\s+)?prescription\b"
    r"|是不是处方药|是处方药吗|处方药吗|是非处方药|非处方药吗|需要处方吗|要处方吗|需不需要处方|要不要处方|凭处方",
    re.I)


def asks_prescription_status(text: str) -> bool:
    """A question whether a drug needs a prescription (module note above)."""
    return bool(_RX_STATUS.search(text))


# exact rules that decide alone, in this order, before any classifier; the answer policy refuses each, and nothing is
# retrieved for them (a classifier-decided prescription request is refused the same way)
_EXACT = (("self_harm", asks_self_harm), ("misuse", asks_misuse), ("prescription", asks_to_prescribe))
POLICY_INTENTS = tuple(name for name, _ in _EXACT)
SECTIONS: dict[str, list[str]] = {name: secs for name, _, secs in _RULES}
CLASS_TO_INTENT = {"interactions": "interaction"}  # prototype class names → route intents
LEX_BONUS = 0.35  # added to an intent's probability when one of its exact cues is in the question
# P(request) (RequestClassifier.request_probability: the vector and character n-gram models together) from which a
# question is refused. Since the classifier also learns from the tuning halves of the project's own sets
# (rag/data/prescription_examples.jsonl), their scores are no guide (all far apart); the value comes from the sets it
# does not learn from. The classifier alone, on the held-aside halves of rx probes 1-12 (296 requests, 271 reports)
# and the held-out set (96 + 96): 0.45 let 2 + 4 requests through, 0.5 2 + 7, 0.4 0 + 3, none of them refusing a
# report; out-of-fold scores of the examples (five folds) refused 4, 2 and 0 of 2,768 other questions at 0.4, 0.45
# and 0.5 and missed no request. A request answered is the worse error, a refused question the likelier one at 0.4.
# Exact request cues catch clear requests below the threshold.
RX_MIN = 0.45
MIN_CONFIDENCE = 0.0  # below it the route is "general" (no preferred section); the prior still ranks passages
RANK_WEIGHTS = (1.0, 0.6, 0.3)
# A patient context the question gives (rag.retrieval.context) fetches its own passage, so when that population's
# intent tops the route, a second intent the question also asks ("我家孩子5岁，X吃多少？": dosage) decides the section
# once it reaches ASKED_MIN; a question only about the population ("Is X safe for my toddler?") keeps its section.
POPULATION_INTENT = {key: intent for intent, key in INTENT_TOPIC.items() if key in {p.key for p in POPULATIONS}}
ASKED_MIN = 0.2
# exact words for an aspect a substance question may still ask ("take X with food", "does X contain alcohol?", "can X
# treat alcohol withdrawal?"): that aspect decides, not the substance
SUBSTANCE_YIELDS = frozenset({"boxed_warning", "dosage", "ingredients", "storage", "pharmacology", "overdosage",
                              "indications"})
# the substance as what the drug treats ("does X help you quit smoking?", "X for alcohol withdrawal", 戒酒): a question
# about the drug's use, not about taking the two together
_TREATS_SUBSTANCE = re.compile(r"\bquit|\bstop(?:ping)? (?:smoking|drinking)|cessation|withdrawal|dependence|"
                               r"addiction|use disorder|alcoholism|craving|戒烟|戒酒|依赖|戒断|成瘾", re.I | re.A)
POPULATION_UNSAID = 0.5  # below it, a population (or one-drug interaction) intent the question has no word for
# gives way to the next intent


@dataclass(slots=True)
class Route:
    intent: str
    sections: list[str]  # [] = no section filter
    probs: dict[str, float] = field(default_factory=dict)  # intent → fused probability
    prior: dict[str, float] = field(default_factory=dict)  # section → prior weight (sums to 1 when set)
    confidence: float = 1.0
    soft: bool = False  # from the classifier: the prior ranks passages; from cues alone: the sections filter them


# the masked question has no punctuation left (kb_loaders.names.norm_name: "can't" → "can t"); the cue phrases are
# written with their apostrophes ("can'?t take", "shouldn'?t", "what's in", "it'?s for"), so the contractions are
# joined again before any cue is matched (measured: no cue with an apostrophe ever matched a masked question)
_NOT_T = re.compile(r"\b(can|don|doesn|isn|aren|wasn|weren|shouldn|couldn|wouldn|won|mustn|didn|hasn|haven|hadn|"
                    r"needn|ain) t\b", re.I | re.A)
_PRONOUN_S = re.compile(r"\b(i|you|we|they|he|she|it|that|what|who|there|where|how) (m|re|ve|ll|d|s)\b", re.I | re.A)


def cue_text(question: str) -> str:
    """The masked question with its contractions joined again ("who can t take X" → "who can't take X")."""
    return _PRONOUN_S.sub(r"\1'\2", _NOT_T.sub(r"\1't", question))


def cues(question: str) -> list[str]:
    """Intents whose exact cue phrases occur in the (masked) question, in rule order."""
    question = cue_text(question)
    return [name for name, rx, _ in _COMPILED if rx.search(question)]


def section_prior(probs: dict[str, float]) -> dict[str, float]:
    prior: dict[str, float] = {}
    for intent, p in probs.items():
        for w, sec in zip(RANK_WEIGHTS, SECTIONS.get(intent, []), strict=False):
            prior[sec] = prior.get(sec, 0.0) + p * w
    total = sum(prior.values())
    return {k: v / total for k, v in prior.items()} if total else {}


# words that ask about drugs together: with one drug the asker already takes named as background, the broad "take …
# and …" cue is no pair question ("I take lisinopril in the morning; how much X should I take and how often?")
_PAIR_WORDS = re.compile(r"interact|together|at the same time|combin|\bmix|along ?with|alongside|clash|conflict|"
                         r"\bDDIs?\b|相互作用|一起|一块|一齐|同时|同服|合用|联用|并用|冲突|相冲|犯冲", re.I | re.A)
# whether the asker may take the other drug at all ("I'm on warfarin. Can I take X?", "I take metformin, is X ok for
# me?", "我在吃华法林，能吃X吗"): a question about the two together, not about the other drug alone
_PERMISSION = re.compile(r"\b(?:can|could|may|should|shall)\s+(?:i|he|she|we|they|you|my \w+)\s+(?:still\s+|also\s+|"
                         r"safely\s+)?(?:take|use|have|give|be given|try|start|add)\b|"
                         r"\b(?:is|are)\s+(?:it\s+)?(?:X|it|this|that|they|them)\s+(?:\w+\s+)?(?:ok|okay|safe|alright|fine)\b|"
                         r"\b(?:ok|okay|safe|alright|fine)\s+(?:to|for)\s+(?:take|use|me|him|her|them|my)\b|"
                         r"(?<!不)能(?:不能)?(?:吃|用|服|喝|打)|(?<!不)可以(?:吃|用|服|喝|打)|可不可以|能否|行不行|安全吗|要紧吗|"
                         r"有没有问题", re.I | re.A)
# "how many mg of X can I take in one day", "X一天最多能吃多少": "can I take" inside a question of how much, how often
# or when asks the dose, not whether the drug may be taken beside another
_HOW_MUCH_BEFORE = re.compile(r"\bhow (?:much|many|often|long|soon|frequently)\b|\bwhat (?:dose|amount|strength)\b|"
                              r"\bwhen\b|\bmax(?:imum)?\b|多少|几[片粒次颗天]|多久|最多|多大量", re.I | re.A)
# right after "能吃": only an amount ("X一天能吃多少"); "can I take X when I have a headache" still asks permission
_HOW_MUCH_AFTER = re.compile(r"^\W*(?:多少|几[片粒次颗]|多大量)", re.I)


def asks_permission(question: str) -> bool:
    """Whether the (masked) question asks if the drug may be taken at all ("I'm on warfarin. Can I take X?"), not how
    much of it ("how many mg of X can I take in one day — already on omeprazole")."""
    for m in _PERMISSION.finditer(question):
        before = question[:m.start()].split()[-8:]  # the masked question has no clause marks left: its last words
        if not _HOW_MUCH_BEFORE.search(" ".join(before)) and not _HOW_MUCH_AFTER.search(question[m.end():][:12]):
            return True
    return False


_WHICH_DRUGS = re.compile(r"\b(?:which|what|any)\s+(?:other\s+)?(?:drugs|meds|medications|medicines|pills)\b|"
                          r"(?:哪些|什么|啥|别的|其他)(?:其他|别的)?药", re.I | re.A)


# A substance named only in sentences that neither ask anything nor say it is taken ("the office coffee machine is
# broken; I began X last week. What side effects is it known for?") is background, not what is asked
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；\n])")
_TAKES_OR_ASKS = re.compile(r"[?？]|\b(?:drinks?|drank|drinking|have|having|had|take|taking|took|eat|eating|ate|"
                            r"use|using|consum\w*|smok\w*|vap\w*|with|while|together|alongside|combin\w*|mix\w*|interact\w*|"
                            r"ok|okay|safe|fine|about|problem|issue|affect\w*|effects?|matter|worry)\b|"
                            r"喝|吃|服|抽|吸|一起|同时|能|可以|吗|呢|行不行|影响|怎么样|咋样", re.I | re.A)


def substance_asked(text: str) -> bool:
    """False when every sentence of `text` that names a substance neither asks nor says it is taken (note above)."""
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    hits = [p for p in parts if any(s.ask.search(p) for s in SUBSTANCES)]
    return len(parts) < 2 or not hits or any(_TAKES_OR_ASKS.search(p) for p in hits)


# A question the asker takes back mid-way ("What are the side effects of — sorry, scratch that — who is not permitted
# to take X?", "X的副作用，不对，说错了，我是想问孕妇能不能用"), or opens with what it does not ask ("我不问剂量，只想
# 知道用X有什么要注意的"): what follows the last retraction is the question. A
# retraction ends its clause (a comma or dash follows it: "ignore that old advice", "药店的人说错了好几次" are no
# retraction), except the words that say what is really asked (我其实想问, what I really wanted to ask)
_RETRACTION = re.compile(r"(?:\b(?:scratch|strike) that|\b(?:ignore|forget|disregard) (?:that|this|what i (?:just )?"
                         r"(?:said|asked|wrote))|\bnever ?mind|\b(?:sorry|oops|wait)\W+i meant|"
                         r"\blet me (?:rephrase|re-?ask|start over|try again)|说错了|打错了|口误|问错了|不对不对)"
                         r"(?=\s*(?:[,，.。;；:：!！…—–-]|$))|"
                         r"\bwhat i (?:really |actually )?want(?:ed)? to (?:ask|know)(?: is)?\b|"
                         r"(?:其实|我其实|我真正|我本来)想问|"
                         # what is not asked, in a clause of its own: "我不问剂量，只想知道…", "not asking about the
                         # dose, just …" (唔問 is read as 不问)
                         r"(?:\b(?:i'?m\s+|i\s+am\s+)?not\s+asking\s+(?:about|how|what|if|whether)\b"
                         r"[^,.;:!?—–]{0,40}|"
                         r"(?:我)?(?:不是|并不是|并非|不)(?:要|想)?问[^，,。；;！!？?]{1,10})(?=\s*[,，;；—–])",
                         re.I | re.A)


def after_retraction(text: str) -> str | None:
    """What `text` asks after its last retraction (note above), when a question of its own follows; else None."""
    ends = [m.end() for m in _RETRACTION.finditer(text)]
    rest = text[ends[-1]:].strip(" \t\n,.;:!?，。；：！？、…—–-") if ends else ""
    return rest if len(re.findall(r"[a-z]{2,}|[\u4e00-\u9fff]", rest, re.I | re.A)) >= 3 else None


def asks_which_drugs(question: str) -> bool:
    """The question asks which drugs interact with one ("what medicines does X interact with?", "X和哪些药相互作用")."""
    return bool(_WHICH_DRUGS.search(question))


def route(question: str, n_drugs: int = 0, n_diseases: int = 0, probs: dict[str, float] | None = None,
          rx: float | None = None, text: str | None = None, context: Sequence[str] = (),
          one_subject: bool = False) -> Route:
    """`question` has its linked names masked; `text` is the question as asked (punctuation kept) for the exact
    request cues; `probs` is the intent classifier's distribution and `rx` the probability that the question asks for
    a prescription (None: exact cues only); `context` the population keys the question gives; `one_subject`: of two
    or more drugs, all but one are named as already taken (rag.retrieval.context.background_mentions)."""
    raw = question if text is None else text
    question = cue_text(question)
    for name, rule in _EXACT:
        if rule(raw):
            return Route(name, [], {name: 1.0}, {}, 1.0)
    found = cues(question)
    if "substance" in found and not substance_asked(raw):
        found.remove("substance")
    if one_subject and "interaction" in found and not _PAIR_WORDS.search(question):
        found.remove("interaction")
    if probs is None:
        return _route_by_cues(question, found, n_drugs, n_diseases)
    if rx is not None and rx >= RX_MIN:
        return Route("prescription", [], {"prescription": rx}, {}, rx)
    fused: dict[str, float] = {}
    for cls, p in probs.items():
        fused[CLASS_TO_INTENT.get(cls, cls)] = fused.get(CLASS_TO_INTENT.get(cls, cls), 0.0) + p
    for name in found:
        if name in fused:
            fused[name] += LEX_BONUS
    if not n_diseases or n_drugs:
        fused.pop("disease_drugs", None)
    fused = _normalise(fused)
    ranked = sorted(fused, key=lambda k: -fused[k])
    top = ranked[0] if ranked else "general"
    prior = section_prior(fused)
    pair_asked = "interaction" in found or bool(_PAIR_WORDS.search(raw)) or asks_permission(question)
    if one_subject and top == "interaction" and not pair_asked:
        # beside a drug already taken, an unsure or placeholder-pulled "interaction" (0.69 on "我长期服用Z，…哪些情况下
        # 是绝对不能使用这个药的" with Z read as "其他药") gives way to an exact word for another intent; the pairs are
        # checked anyway
        top = next(iter(_cued(ranked, found)), top)
    if n_drugs >= 2 and not (one_subject and top != "interaction" and not pair_asked
                             and (fused[top] >= POPULATION_UNSAID or top in found)):
        # several drugs: whether they go together, unless one is the subject of a clear question of another kind and
        # the others are what the asker already takes ("I'm on metformin, what is naproxen used for?"); every pair is
        # checked either way (rag.retrieval.retriever). The classifier read the subject's question alone then, so the
        # passages are ranked as for an interaction question, not by its distribution
        pair_prior = section_prior({"interaction": 1.0}) if one_subject else prior
        return Route("interaction", list(SECTIONS["interaction"]), fused, pair_prior, fused.get("interaction", 0.0),
                     True)
    if n_diseases and not n_drugs:
        return Route("disease_drugs", [], fused, prior, fused.get("disease_drugs", 0.0), True)
    if "substance" in found and not SUBSTANCE_YIELDS.intersection(found) and not _TREATS_SUBSTANCE.search(question):
        # "can I drink wine on X?", "X和保健品一起吃有影响吗": what the label says about X and that substance, wherever
        # it says it, not which other drugs interact with X; an exact word for another aspect ("take X with food",
        # "does X contain alcohol?") keeps that aspect
        p = max(fused.values(), default=0.0)
        return Route("substance", list(SECTIONS["substance"]), fused, section_prior({**fused, "substance": 1.0}),
                     p, True)
    given = {POPULATION_INTENT[k] for k in context if k in POPULATION_INTENT}
    top = _worded_intent(top, fused, ranked, found, given, bool(context))
    if top in given:
        asked = next((k for k in ranked if k not in POPULATION_INTENT.values()), None)
        if asked is not None and (fused[asked] >= ASKED_MIN or asked in found):  # an exact cue says what is asked
            top = asked
    conf = fused.get(top, 0.0)
    if conf < MIN_CONFIDENCE:
        return Route("general", [], fused, prior, conf, True)
    return Route(top, list(SECTIONS.get(top, [])), fused, prior, conf, True)


def _cued(ranked: list[str], found: list[str]) -> list[str]:
    """The intents with an exact cue word, in the classifier's order, that can overrule it: no drug pair and no
    population (those have their own rules)."""
    return [k for k in ranked if k in found and k != "interaction" and k not in POPULATION_INTENT.values()]


def _worded_intent(top: str, fused: dict[str, float], ranked: list[str], found: list[str], given: set[str],
                   context: bool) -> str:
    """The classifier's top intent, unless the question has no word for it and it is pulled or unsure, where an
    exact cue word for another intent says what is asked. The cases this one rule covers:
    - a one-drug "interaction" with the patient's condition ("stage 4 kidney disease - should I stay away from X?")
      or an unsure one beside another cue ("X with beer?": alcohol is a warning);
    - a population intent for a population the question does not name, unsure ("naproxen and alcohol" → lactation
      0.4) or beside another cue ("ibuprofen with milk?": dosage);
    - the patient's condition pulling the classifier towards safety ("I have kidney disease, how much X can I take?"
      → contraindications);
    - any unsure intent beside another cue ("X用多了会怎么样": "what happens" read as what it is for, 0.38);
    - "overdosage" beside a dosage word and no overdose word ("I missed a dose of X, what should I do?").
    Without a cue word, a one-drug interaction read with a patient's condition gives way to the next intent, and an
    unsure population intent to the next that is no population (nor a drug pair, with a condition given)."""
    populations = set(POPULATION_INTENT.values())
    cued = _cued(ranked, found)
    for _ in range(2):  # a second look at the intent a cue-less interaction gave way to
        if top in found or top in given:
            return top
        if cued and (fused[top] < POPULATION_UNSAID or context or top in populations):
            return cued[0]
        if top == "overdosage" and "dosage" in found:
            return "dosage"
        if top == "interaction" and context:
            top = next((k for k in ranked if k != "interaction"), top)
            continue
        if top in populations and fused[top] < POPULATION_UNSAID:
            rest = [k for k in ranked if k not in populations and (k != "interaction" or "interaction" in found
                                                                     or not context)]
            return next((k for k in rest if k in found), rest[0] if rest else top)
        return top
    return top


def _normalise(d: dict[str, float]) -> dict[str, float]:
    total = sum(d.values())
    return {k: v / total for k, v in d.items()} if total > 0 else d


def _route_by_cues(question: str, found: list[str], n_drugs: int, n_diseases: int) -> Route:
    for name in found:
        if name == "interaction" and n_drugs < 2 and not re.search(r"interact|相互作用", question, re.I | re.A):
            continue  # "take X with food" etc. is not a drug–drug question
        if name == "disease_drugs" and n_diseases == 0:
            continue
        return Route(name, list(SECTIONS[name]), {name: 1.0}, section_prior({name: 1.0}))
    if n_drugs >= 2:
        return Route("interaction", list(SECTIONS["interaction"]))
    if n_diseases and not n_drugs:
        return Route("disease_drugs", [])
    return Route("general", [])
