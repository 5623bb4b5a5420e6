"""Entity linking: drugs (generic, brand, substance, salt forms, Chinese names) and diseases named in a question.

The dictionary is built once from the graph (Drug names and aliases, Disease names) plus the bundled zh→en drug
name table, keyed by both the normalised surface form and the base name (salts and dosage forms stripped). Matching
is longest-first over word n-grams (Latin script) and substrings (Chinese), so "warfarin sodium", "WARFARIN" and
"华法林钠片" all reach Drug "warfarin"; several drugs in one question are all found.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rapidfuzz import distance, process

from kb_loaders.names import APPROVAL_NUMBER, FORM_WORDS, SALT_WORDS, approval_number, base_name, has_cjk, norm_name
from rag.core.frequency import zh_zipf, zipf
from rag.core.text import to_simplified
from rag.core.types import LinkedEntity
from rag.retrieval.context import populations
from rag.retrieval.lexicon import (
    ATTESTED,
    ZH_COMMON_WORD,
    has_inn_stem,
    is_medical_word,
    is_ordinary_chinese,
    is_ordinary_form,
    is_rare,
    is_typo_of_common,
)

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parents[1] / "data"

# Words that are drug/brand names somewhere but mostly mean something else in a question.
EN_STOP = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in into is it its me my no
    not of on or our should so than that the their them then there these they this to too was we were what when where
    which who why will with would you your use used uses dose doses dosage take taking taken drug drugs medicine
    medicines tablet tablets interact interaction interactions together side effect effects warning warnings boxed
    pregnant pregnancy child children adult adults safe risk risks help care relief pain cold cough allergy sleep
    night day daily extra strength original regular plus max maximum junior children's women men care one
    recommended usual minimum adult much many often long pregnant breastfeeding elderly people someone patient
    patients doctor pharmacist medication medications pill pills capsule capsules injection better worse good bad
    okay fine dangerous same time morning evening food alcohol drink drinking eat eating before after during while
    stop start starting stopping missed miss forget forgot about tell know want need please thanks thank hello
    other another some any every here using treat treats treatment condition disease symptoms symptom reactions
    reaction adverse contraindications contraindicated precautions storage store ingredients ingredient overdose
    mechanism work works dosing twice once three times hours weeks days infants infant black blackbox label labels
    lactation nursing kidney liver renal hepatic function impairment heart blood pressure also still just really
    much more most less least like likely cause causes caused work""".split()
)
ZH_QUESTION_WORDS = re.compile(
    r"(吃了|用了|服了|喝酒|饮酒|对孩子|对宝宝|对胎儿|伤肝|伤肾|伤胃|"  # longer words first: alternation takes the first
    r"的|是|什么|哪些|有|吗|呢|么|怎么|如何|可以|能|能否|一起|同时|和|与|跟|及|服用|使用|吃|用|适应症|适应证|功能主治|主治|"
    r"治疗|用法|用量|剂量|禁忌|不良反应|副作用|注意事项|相互作用|孕妇|儿童|老人|请问|我|想|知道|药|这个|那个|这种|那种|该|此|它|"
    r"这|那|多少|几|一次|一天|每次|每天|需要|应该|要|不会|安全|影响|吧|啊|呀|孩子|"
    r"小孩|宝宝|婴儿|老年人|哺乳期|怀孕|期间|的时候|时候|以后|之后|以前|之前|"
    r"？|\?|。|，|,|！|!|\s)+"
)
# A Chinese name joined to a known one ("布洛芬和佐布拉汀能一起吃吗"): the other side of 和/与/跟 … up to where the
# question goes on. It is an unknown drug unless it is food or drink, a pronoun, or a class ("感冒药", "降压药").
_ZH_JOIN = r"\s*(?:和|与|跟|及|以及|加上|同埋|同(?![时样一类等种])|、|\+|＋|/)\s*"  # 同: Cantonese "with"
_ZH_AFTER = (
    r"(?=能|可以|可不可以|可否|一起|一齐|一块|同时|有没有|有|会|吗|合用|同用|并用|联用|相互|之间|冲突|$|[，。？！?,])"
)
_ZH_PARTNER = (
    re.compile("\x00" + _ZH_JOIN + r"([\u4e00-\u9fff]{2,8}?)" + _ZH_AFTER),
    re.compile(r"(?:^|[，。？！?,\s]|吃|用|服)([\u4e00-\u9fff]{2,8}?)" + _ZH_JOIN + "\x00"),
)
# In an English question a run of Chinese characters beside a linked name ("DDI warfarin 璎钶苒桐?") that names
# nothing we know and is not ordinary Chinese (谢谢, 早上, 医生说: rag.retrieval.lexicon) is an unknown drug name.
_UNIT_WORDS = frozenset("mg ml mcg ug kg iu bid tid qid qd qod prn hs am pm tab tabs cap caps".split())
_ZH_RUN = re.compile(r"(?<![\u4e00-\u9fff])[\u4e00-\u9fff]{2,8}(?![\u4e00-\u9fff])")  # a whole run: longer is a clause
_ZH_NOT_A_DRUG = re.compile(
    # a pronoun that begins the words or is one ("他的", "我们"), not 他 inside a name (奥司他韦, 阿托伐他汀)
    r"药|酒|茶|咖啡|奶|果|汁|饭|食|菜|肉|蛋|水|饮料|烟|^[我你他她它您咱俺]|[我你他她它](?:们|的|家)|别的|其他|什么|哪|啥|"
    r"任何|所有|一切|谁|咋|"
    r"剂量|用量|用法|方法|时间|次数|疗程|多少|多久|怎么|"
    # supplements, herbs and other things taken beside a drug (rag.retrieval.context.SUBSTANCES)
    r"保健|补品|补剂|营养|维生素|鱼油|钙片|草药|人参|银杏|褪黑素|偏方|烟|柚|鱼丸|牛丸|虾丸|汤圆|疫苗"
)


# a Chinese dosage-form ending: what a product name adds to its generic name (布洛芬缓释胶囊, 多西环素胶囊)
_ZH_FORM_END = re.compile(r"(?:缓释|控释|肠溶|分散|口崩|咀嚼|泡腾|含|软)?"
                          r"(?:片|胶囊|胶丸|胶|丸|颗粒|注射液|注射剂|口服液|口服溶液|混悬液|糖浆|滴眼液|滴剂|乳膏|软膏|凝胶|"
                          r"贴剂|栓|散|干混悬剂)$")


def is_zh_product(name: str) -> bool:
    """A Chinese name written with its dosage form (复方甘草片, 璟昀滴丸): a product's name, not a clause."""
    return has_cjk(name) and len(name) >= 3 and bool(_ZH_FORM_END.search(name))


# a Chinese run that ends in a dosage form (not after a number or measure word: 一片, 两粒, 每片)
_ZH_PRODUCT = re.compile(r"([\u4e00-\u9fff]{2,10}?)(?<![一二两三四五六七八九十半几每多这那此该本种个粒支])"
                         r"(缓释片|控释片|肠溶片|分散片|片|胶囊|胶丸|丸|颗粒|注射液|口服液|糖浆|滴眼液|乳膏|软膏|凝胶|贴剂|栓)"
                         r"(?![\u4e00-\u9fff]{0,1}[剂])")
# the words that lead up to a product name in a question: who, when, taking, using, with
_ZH_LEAD_IN = re.compile(r"^(?:我|俺|咱|他|她|还|也|又|都|在|正在|一直|长期|每天|天天|现在|最近|刚|刚刚|"
                         r"开始|吃|服|服用|用|使用|喝|打|涂|擦|滴|贴|能|可以|可|和|与|跟|及|同|加|配|配合|了|的|"
                         r"这个|那个|这种|那种|叫|个|种|款|医生|大夫|开|开了|给|让|说)+")
# words that make a run of Chinese a clause (a choice, a question, a negation), which no invented name holds
_ZH_CLAUSE = re.compile(r"还是|或者|[吗呢吧啊呀么嘛不没]")
_VOWEL = re.compile(r"[aeiou]")
# particles, numerals and verbs of being that no drug name holds: text, not a name
_ZH_GRAMMAR = re.compile(r"[了的着过吗呢吧啊呀是有在起一二两三四五六七八九十几每些]")
_ZH_ONLY = re.compile(r"[\u4e00-\u9fff]+")  # a stretch of Chinese characters only
# characters that end the words before a product name (吃, 用, 和, 的, 了, a measure word): not part of the name
_ZH_NAME_BOUNDARY = frozenset("吃用服和与跟及同加的了在开是喝打涂擦滴贴、把给让叫种个款盒瓶支粒颗片这那买拿换"
                              "问说想要妇岁天月次")
_ZH_FORM_START = re.compile(r"[片胶丸颗注滴乳软缓控肠分贴栓散口混糖凝含咀泡]")


# form words that also join a name to the rest of a question ("prescribe X for me"): never the end of a name
TAIL_WORDS = frozenset({"for", "and", "with", "or", "of", "in", "to"})
_LATIN_CJK = re.compile(r"(?<=[A-Za-z0-9])(?=[\u3400-\u9fff])|(?<=[\u3400-\u9fff])(?=[A-Za-z0-9])")


@dataclass
class Link:
    id: str
    type: str  # Drug | Disease
    name: str
    matched: str
    label_ids: list[str] = field(default_factory=list)
    corrected: bool = False  # linked through the misspelling pass (edit distance), not an exact name

    def entity(self) -> LinkedEntity:
        return LinkedEntity(
            id=self.id, type=self.type, name=self.name, matched=self.matched, in_labels=bool(self.label_ids),
            corrected=self.corrected,
        )


@dataclass
class LinkResult:
    links: list[Link]
    unlinked: list[str]  # name-like words of the question that matched nothing (an unknown drug)
    suggestions: list[str] = field(default_factory=list)  # close drug names for misspelt or unknown words
    misspelt: list[str] = field(default_factory=list)  # the words of the question those names were close to: names
    # too ("Drug: nlutamide" — flutamide or nilutamide?), masked like one (rag.retrieval.retriever.mask_mentions)
    # a second name of a drug already linked ("Aleve (naproxen sodium)") → the first mention's matched text: the
    # same drug, masked with the same placeholder
    again: dict[str, str] = field(default_factory=dict)

    @property
    def drugs(self) -> list[Link]:
        return [x for x in self.links if x.type == "Drug"]

    @property
    def diseases(self) -> list[Link]:
        return [x for x in self.links if x.type == "Disease"]


class EntityLinker:
    def __init__(
        self,
        drug_names: list[tuple[str, str]],
        disease_names: list[tuple[str, str]],
        drug_labels: dict[str, list[str]],
        zh_en: dict[str, str] | None = None,
        synonyms: list[list[str]] | None = None,
        kb_words: frozenset[str] = frozenset(),
    ) -> None:
        self.kb_words = kb_words  # the label text's vocabulary: jargon there is not an unknown drug name
        self.drug_labels = drug_labels
        self.display: dict[tuple[str, str], str] = {}
        # key → list of (type, id); several ids per key are possible (e.g. 华法林 → warfarin and 华法林)
        self.keys: dict[str, list[tuple[str, str]]] = {}
        self.translated: set[str] = set()  # ids reached through the zh→en table: preferred over graph-only zh ids
        self._full: set[str] = set()  # Chinese keys that are a whole name of something
        self._cut: set[str] = set()  # Chinese keys made by cutting a dosage form off a name
        for did, name in drug_names:
            self._add("Drug", did, name)
            self.display.setdefault(("Drug", did), name)
        # synonym groups: every name of a group reaches every member's id (aspirin ↔ acetylsalicylic acid)
        group_of: dict[str, list[str]] = {}
        for group in synonyms or []:
            ids = [base_name(n) for n in group]
            for n in group:
                group_of[base_name(n)] = ids
                for did in ids:
                    self._add("Drug", did, n)
                    self.display.setdefault(("Drug", did), group[0])
        for zh, en in (zh_en or {}).items():
            for did in group_of.get(base_name(en), [base_name(en)]):
                self._add("Drug", did, zh)
                self.display.setdefault(("Drug", did), en)
                self.translated.add(did)
        for did, name in disease_names:
            self._add("Disease", did, name)
            self.display.setdefault(("Disease", did), name)
        for k in [k for k in self.keys if has_cjk(k)]:  # questions are read as simplified (rag.core.text): a name
            simple = to_simplified(k)                     # such as 磺胺甲噁唑 must be found in that form too
            if simple != k:
                for typ, eid in self.keys[k]:
                    self._add(typ, eid, simple)
        # a multi-word drug name typed without its spaces ("mexiletinehydrochloride", "icosapentethyl") is that name;
        # as one-word keys the joined forms also take part in the misspelling search below
        for k in [k for k in self.keys if " " in k and not has_cjk(k)]:
            joined = k.replace(" ", "")
            drugs = [o for o in self.keys[k] if o[0] == "Drug"]
            if drugs and len(joined) >= 8 and joined.isalpha() and joined not in self.keys and joined not in EN_STOP:
                self.keys[joined] = drugs
        # Chinese keys that exist only as a product name less its dosage form and are common words (wordfreq Zipf
        # >= 2.5: 胃痛 of 胃痛丸, 消炎 of 消炎片, 甲状腺 of 甲状腺片, 减肥 of 减肥胶囊): in "因为胃痛去看病" or "甲状腺
        # 不好" they are the patient's words, so they name the product only where its form follows ("胃痛丸")
        self._cut_keys = self._cut - self._full
        self._cut_only = {k for k in self._cut_keys if zh_zipf(k) >= ZH_COMMON_WORD}
        self.max_words = max((len(k.split()) for k in self.keys if not has_cjk(k)), default=8)
        self.max_zh = max((len(k) for k in self.keys if has_cjk(k)), default=2)
        # latin drug names by word count, for misspellings (rapidfuzz over the name index)
        self._fuzzy_keys: dict[int, list[str]] = {}
        for k, owners in self.keys.items():
            if not has_cjk(k) and len(k) >= 5 and any(t == "Drug" for t, _ in owners):
                self._fuzzy_keys.setdefault(len(k.split()), []).append(k)
        # Chinese drug names of 3+ characters by length, for typing slips (布洛分 → 布洛芬)
        self._zh_keys: dict[int, list[str]] = {}
        for k, owners in self.keys.items():
            if has_cjk(k) and len(k) >= 3 and any(t == "Drug" for t, _ in owners):
                self._zh_keys.setdefault(len(k), []).append(k)
        log.info("entity linker: %d keys", len(self.keys))

    def _add(self, typ: str, eid: str, name: str) -> None:
        full, base = norm_name(name), base_name(name)
        if has_cjk(full):
            self._full.add(full)
            if base != full:
                self._cut.add(base)
        for key in {full, base}:
            if not key or key in EN_STOP:
                continue
            if has_cjk(key):
                if len(key) < 2:
                    continue
            elif len(key) < 3:
                continue
            lst = self.keys.setdefault(key, [])
            if (typ, eid) not in lst:
                lst.append((typ, eid))

    def _resolve(self, key: str, matched: str) -> list[Link]:
        out = []
        ids = list(self.keys[key])
        if has_cjk(key):
            # a Chinese product name ("布洛芬缓释胶囊", "左甲状腺素钠片") is a key of its own whose id is the bare
            # generic name (布洛芬): reach what that generic name reaches too (the zh→en table's ibuprofen, which
            # has labels); without it the longer product name hid the labelled drug behind a graph-only node
            for typ, eid in list(ids):
                if typ == "Drug" and eid != key and not self.drug_labels.get(eid) and has_cjk(eid):
                    ids += [o for o in self.keys.get(eid, []) if o[0] == "Drug" and o not in ids]
            if not any(t == "Drug" and self.drug_labels.get(e) for t, e in ids):
                # still no label: the name less a dosage-form ending ("多西环素胶囊" → 多西环素 → doxycycline).
                # Not kb_loaders.names.ZH_FORMS: it lacks 胶丸, 干混悬剂, 混悬液, 滴剂 …, so graph ids keep those
                m = _ZH_FORM_END.search(key)
                stem = key[: m.start()] if m else ""
                if len(stem) >= 2 and stem in self.keys:
                    ids += [o for o in self.keys[stem] if o[0] == "Drug" and o not in ids]
        # a drug that has labels first, then other drugs, then diseases
        ids = sorted(
            ids,
            key=lambda t: (
                t[0] != "Drug",
                not self.drug_labels.get(t[1]),
                t[1] not in self.translated,
                t[1] != base_name(key),
            ),
        )
        for typ, eid in ids:
            out.append(
                Link(
                    eid,
                    typ,
                    self.display.get((typ, eid), eid),
                    matched,
                    list(self.drug_labels.get(eid, [])) if typ == "Drug" else [],
                )
            )
        return out

    def link(self, question: str) -> LinkResult:
        """Exact names first (longest match), then misspellings of drug names (edit distance over the name index,
        linked only when confident, else offered as "did you mean"), then name-like words that match nothing."""
        simple = to_simplified(question)
        q = norm_name(_LATIN_CJK.sub(" ", simple))
        links: list[Link] = []
        seen: dict[tuple[str, str], str] = {}  # (type, id) linked → the text it was first matched as
        again: dict[str, str] = {}

        def add(found: list[Link]) -> None:
            for lk in found:
                first = seen.get((lk.type, lk.id))
                if first is None:
                    seen[(lk.type, lk.id)] = lk.matched
                    links.append(lk)
                elif first and lk.matched and lk.matched != first and lk.matched not in {x.matched for x in links}:
                    again.setdefault(lk.matched, first)

        codes: list[str] = []  # approval numbers the knowledge base does not hold: unknown products
        for m in APPROVAL_NUMBER.finditer(q):  # whole, before its latin half could pass for an unknown name
            code = approval_number(m.group())  # the insert loader keeps it as an alias in this spelling
            key = norm_name(code)
            if key in self.keys:
                add(self._resolve(key, m.group()))
            else:
                codes.append(code)
            q = q.replace(m.group(), " ")

        for part in q.split():
            if has_cjk(part):
                i = done = 0  # done: where the last name found ended
                while i < len(part):
                    for L in range(min(self.max_zh, len(part) - i), 1, -1):
                        sub = part[i: i + L]
                        if sub in self._cut_only and not _ZH_FORM_START.match(part, i + L):
                            continue  # "因为胃痛去看病": an ordinary word, not 胃痛丸 without its form
                        if sub in self._cut_keys and i > done and part[i - 1] not in _ZH_NAME_BOUNDARY \
                                and _ZH_FORM_START.match(part, i + L):
                            continue  # "润肺清咽口服液": a longer product name with a form of its own, not 清咽片
                        if sub in self.keys:
                            slip = self._zh_longer_slip(part, i, L, done)
                            if slip is not None:  # "作氧氟沙星": 左氧氟沙星 typed with a homophone, not 氧氟沙星
                                s0, i, longer = slip
                                add([replace(lk, corrected=True) for lk in self._resolve(longer, part[s0:i])
                                     if lk.type == "Drug"])
                                done = i
                                break
                            found = self._resolve(sub, sub)
                            if L <= 2 and part[i + L: i + L + 1] in ("药", "的"):  # "消炎药", "降糖的": a
                                # class of drugs, not the product 消炎片 cut to 消炎; "吗啡药物" is still morphine
                                found = [lk for lk in found if not (lk.type == "Drug" and lk.name != sub
                                                                    and lk.name.startswith(sub))]
                            add(found)
                            i += L
                            done = i
                            break
                    else:
                        i += 1
        toks = q.split()
        pos = [k for k, w in enumerate(toks) if not has_cjk(w)]  # a name never spans Chinese text ("8岁，omnipaque")
        words = [toks[k] for k in pos]
        left: list[int] = []  # positions of latin words no exact name covered
        single: dict[int, list[Link]] = {}  # one-word exact names by position ("silver" of "silver sulfadiazne")
        i = 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                gram = " ".join(words[i: i + n])
                if n > 1 and (pos[i + n - 1] - pos[i] != n - 1 or (words[i].isdigit() and gram not in self.keys)):
                    continue  # across Chinese text, or a leading number ("my son is 8, omnipaque"): not one name
                key = gram if gram in self.keys else base_name(gram) if words[i + n - 1] not in TAIL_WORDS else ""
                if key in self.keys and key not in EN_STOP:
                    if key != gram and n > 1 and self._name_starts_inside(words, i, n):
                        continue  # "lisinopril potassium chloride": a salt word that begins another drug's name
                    if key != gram and n > 1 and words[i] in FORM_WORDS:
                        continue  # "for fostemsavir": a form word before a name is no part of it (the name alone
                        # then links, and a misspelt salt after it can still join it: "fostemsavir trometkamine")
                    found = self._resolve(key, gram)
                    if n == 1:
                        single[i] = found
                    add(found)
                    i += n
                    break
            else:
                left.append(i)
                i += 1
        unlinked: list[str] = codes
        suggestions: list[str] = []
        misspelt: list[str] = []

        def drop(found: list[Link]) -> None:  # an exact one-word name that a misspelt longer name contains
            gone = {(lk.type, lk.id) for lk in found}
            links[:] = [lk for lk in links if (lk.type, lk.id) not in gone]
            for key in gone:
                seen.pop(key, None)

        for w in self._fuzzy_pass(words, left, add, suggestions, single, drop, misspelt):
            unlinked.append(w)
        if links and has_cjk(q):
            marked = simple.lower()  # each linked name as \x00: what the unknown-partner rules read around
            for name in sorted({lk.matched for lk in links if lk.matched}, key=len, reverse=True):
                # a Latin name is matched as its words: in the question they may stand apart ("| Miglitol | 5 mg |")
                marked = re.sub(r"[\W_]+".join(map(re.escape, name.lower().split())), "\x00", marked)
            if "\x00" in marked:
                unlinked += self._zh_partners(marked)
                unlinked += [w for w in self._zh_products(marked) if w not in unlinked]
        if not links and not unlinked:  # a Chinese question that names nothing we know: what is left may be a name
            rest = ZH_QUESTION_WORDS.sub(" ", question)
            unlinked.extend(r for r in rest.split() if has_cjk(r) and len(r) >= 2)
        for u in [u for u in unlinked if has_cjk(u)]:
            # the question words cut around it may have cut a slip too ("熙地那非" → 熙地 | 那 | 非): try the
            # stretches of the question around it as well
            w, zkey, sure, close = self._zh_slip(simple, to_simplified(u))
            if zkey is not None and sure:
                add([replace(lk, corrected=True) for lk in self._resolve(zkey, w) if lk.type == "Drug"])
                unlinked.remove(u)
            else:
                suggestions.extend(close)
        unlinked = [u for u in unlinked if not any(u != v and u in v for v in unlinked)]  # 清咽口服液 of 润肺清咽口服液
        return LinkResult(links, unlinked, list(dict.fromkeys(suggestions))[:3],
                          [w for w in dict.fromkeys(misspelt) if w not in unlinked],
                          {m: f for m, f in again.items() if m not in {x.matched for x in links}})

    def _zh_longer_slip(self, part: str, i: int, n: int, floor: int) -> tuple[int, int, str] | None:
        """(start, end, key) when the exact drug name part[i:i+n] is the inside of a longer drug name typed with one
        homophone slip at its edge (作氧氟沙星 is 左氧氟沙星, not 氧氟沙星; 矣诺肝素 is 依诺肝素, not 肝素)."""
        inner = part[i: i + n]
        if not any(t == "Drug" for t, _ in self.keys[inner]):
            return None
        for a, b in ((1, 0), (0, 1), (2, 0), (0, 2), (1, 1)):
            s0, e0 = i - a, i + n + b
            if s0 < floor or e0 > len(part):
                continue
            w = part[s0:e0]
            if b and _ZH_FORM_START.match(part, i + n):
                continue  # the name and its dosage form ("肝素胶囊"), not a slip of another name (肝苏胶囊)
            if w in self.keys or not _ZH_ONLY.fullmatch(w) \
                    or not any(inner[1:] in k or inner[:-1] in k for k in self._zh_keys.get(len(w), ())):
                continue  # the longer name holds most of the shorter one: a cheap test before the edit distance
            key, sure, _ = self._zh_fuzzy(w)
            if key is not None and sure and len(key) > n:
                return s0, e0, key
        return None

    def _zh_slip(self, q: str, u: str) -> tuple[str, str | None, bool, list[str]]:
        """(text, drug key, confident?, did-you-mean) for the unknown Chinese word `u` of question `q`: `u` itself,
        else the first stretch of 3-8 characters around it (up to three on each side) that is a confident slip."""
        got = self._zh_fuzzy(u)
        if got[1]:
            return (u, *got)
        p = q.find(u)
        if p >= 0:
            for n in range(min(8, len(u) + 6), 2, -1):
                for s in range(max(0, p - 3), p + 1):
                    w = q[s: s + n]
                    if len(w) == n and s + n >= p + min(len(u), 2) and _ZH_ONLY.fullmatch(w):
                        alt = self._zh_fuzzy(w)
                        if alt[1]:
                            return (w, *alt)
        return (u, *got)

    def _zh_fuzzy(self, w: str) -> tuple[str | None, bool, list[str]]:
        """(drug key, confident?, did-you-mean names) for a Chinese name typed with one wrong, missing or extra
        character (布洛分, 华发林, 阿莫西临: pinyin input picks a homophone). Confident only when every name within one
        edit is the same drug and one of them sounds the same (toneless pinyin, same length); otherwise its names
        are offered as "did you mean". Invented names are not one character from a real one (璎钶苒桐)."""
        if not 3 <= len(w) <= 12:
            return None, False, []
        choices = [k for n in (len(w) - 1, len(w), len(w) + 1) for k in self._zh_keys.get(n, [])]
        found = process.extract(w, choices, scorer=distance.DamerauLevenshtein.distance, score_cutoff=1, limit=8)
        if not found:
            return None, False, []
        groups: list[tuple[set[str], list[str]]] = []  # one per drug: keys whose ids overlap
        for k, _, _ in found:
            ids = {eid for typ, eid in self.keys[k] if typ == "Drug"}
            for g_ids, g_keys in groups:
                if g_ids & ids:
                    g_ids |= ids
                    g_keys.append(k)
                    break
            else:
                groups.append((ids, [k]))
        close = [self.display.get(("Drug", sorted(ids, key=lambda i: (not self.drug_labels.get(i), i))[0]), keys[0])
                 for ids, keys in groups][:3]
        from pypinyin import lazy_pinyin  # pure Python, its dictionary in the wheel; only for a slip candidate

        sound = lazy_pinyin(w)
        same = [(i, k) for i, (_, keys) in enumerate(groups) for k in keys
                if len(k) == len(w) and lazy_pinyin(k) == sound]
        if len({i for i, _ in same}) == 1:  # one drug sounds the same (熙地那非: 西地那非, not 伐地那非)
            return same[0][1], True, close
        return (groups[0][1][0] if len(groups) == 1 else None), False, close

    @staticmethod
    def _zh_partners(marked: str) -> list[str]:
        """Unknown drugs beside a linked name: Chinese words joined to it by 和/与/跟/+ … that name nothing we know,
        and, in an English question, a run of Chinese characters that is not ordinary Chinese."""
        out: list[str] = []
        for rx in _ZH_PARTNER:
            for hit in rx.finditer(marked):
                w = hit.group(1)
                if not _ZH_NOT_A_DRUG.search(w) and not w.endswith("的") and w not in out:  # "降压的": "the BP one"
                    out.append(w)
        names = [w for w in _ZH_RUN.findall(marked) if w not in out and not _ZH_NOT_A_DRUG.search(w)
                 and not populations(w) and not is_ordinary_chinese(w)  # 孕早期, 肾衰: the patient, not a name
                 and not _ZH_CLAUSE.search(w)]  # "…side effect多不多？yyds还是踩雷": a clause of a Chinese question
        # the question's own English words, its linked names and units (mg, ml, bid) left out
        latin = sum(len(w) for w in re.findall(r"[a-z]{2,}", marked) if w not in _UNIT_WORDS)
        rest = len(re.findall(r"[\u4e00-\u9fff]", marked)) - sum(len(w) for w in names)
        if names and latin >= max(1, rest):  # an English question with a Chinese word in it: "DDI warfarin 璎钶苒桐?"
            out += names
        return out

    @staticmethod
    def _zh_products(marked: str) -> list[str]:
        """Unknown products beside a linked name: a Chinese name written with its dosage form ("改开泽维洛尔片",
        "正在服用赛洛莫啶片") that names nothing we know. The ordinary words before it (改开, 正在服用) are cut off, and
        a quantity (一片, 两粒) or a common word before the form (止痛片, 感冒胶囊) is not a name."""
        out: list[str] = []
        for hit in _ZH_PRODUCT.finditer(marked):
            run = hit.group(1)
            cut = max((s for s in range(len(run) - 1) if s == 0 or is_ordinary_chinese(run[:s])), default=0)
            name = run[cut:].lstrip("和与跟及加同")
            if is_ordinary_chinese(name):
                # an invented name of common characters splits into common words too (左西康: 左 + 西康, a place;
                # 布洛宁: 布 + 洛宁): before a dosage form, what follows the words that lead up to a name (我在吃,
                # 正在服用, 能和) is a name unless it is one common word (感冒胶囊, 止痛片, 板蓝根颗粒)
                name = _ZH_LEAD_IN.sub("", run)
                if zh_zipf(name) >= ZH_COMMON_WORD or len(name) > 4 or _ZH_GRAMMAR.search(name):  # 身上起了一片片
                    continue
            if len(name) >= 2 and not _ZH_NOT_A_DRUG.search(name + hit.group(2)) \
                    and not _ZH_FORM_END.fullmatch(name + hit.group(2)) \
                    and not populations(name) and name + hit.group(2) not in out:
                out.append(name + hit.group(2))
        return out

    def _name_starts_inside(self, words: list[str], i: int, n: int) -> bool:
        """True when a multi-word drug name begins after the first word of words[i:i+n] (and may run past it)."""
        for j in range(i + 1, i + n):
            for m in range(min(self.max_words, len(words) - j), 1, -1):
                if any(t == "Drug" for t, _ in self.keys.get(" ".join(words[j: j + m]), [])):
                    return True
        return False

    def _fuzzy_pass(self, words: list[str], left: list[int], add: Callable[[list[Link]], None],
                    suggestions: list[str], single: dict[int, list[Link]] | None = None,
                    drop: Callable[[list[Link]], None] | None = None,
                    misspelt: list[str] | None = None) -> list[str]:
        """Link confident misspellings among the leftover words; return the name-like words that stay unknown.
        A multi-word span may take in a word that alone is an exact one-word name (`single`): "silver sulfadiazne"
        is silver sulfadiazine, and the exact "silver" link is dropped for it."""
        unknown: list[str] = []
        used: set[int] = set()
        lefts = set(left)
        named = set(range(len(words))) - lefts  # words an exact name covered
        single = single or {}
        for i in left:
            if i in used:
                continue
            done = False
            for n in range(min(FUZZY_WORDS, len(words)), 0, -1):  # a multi-word name first ("trastuzumab emtansin",
                # "coool relief gel with aloe")
                for start in range(i - n + 1, i + 1):  # every span of n words that covers word i
                    span = list(range(start, start + n))
                    if start < 0 or span[-1] >= len(words) or any(j in used for j in span) or not all(
                            j in lefts or (n > 1 and j in single) for j in span):
                        continue
                    gram = " ".join(words[j] for j in span)
                    if not any(j in lefts and is_rare(words[j]) and words[j] not in self.kb_words for j in span) \
                            or all(words[j] in EN_STOP for j in span):
                        continue
                    key, sure, close = self._fuzzy(gram, n)
                    if key is not None and sure:
                        for j in span:
                            if j in single and drop is not None:
                                drop(single[j])
                        add([replace(lk, corrected=True) for lk in self._resolve(key, gram) if lk.type == "Drug"])
                        used.update(span)
                        done = True
                        break
                    if n == 1:
                        suggestions.extend(close)
                        if close and misspelt is not None:
                            misspelt.append(gram)
                if done:
                    break
            if not done and i not in used:
                w = words[i]
                if w in EN_STOP or not is_rare(w) or (i and words[i - 1] in _INTENSIFIERS):
                    continue  # "very jialat": a word an intensifier qualifies is an adjective, never a name
                if not _VOWEL.search(w):
                    continue  # "yyds", "xswl", "smh": pinyin-initial slang or a chat abbreviation; names are spoken
                if i + 1 < len(words) and words[i + 1] == "t" and len(words[i + 2] if i + 2 < len(words) else "") != 1 \
                        and (w.endswith("n") or zipf(w + "'t") >= ATTESTED or is_typo_of_common(w + "'t")):
                    continue  # "shoudn't", "cudn't": a misspelt negation (the apostrophe split it), never a name
                if has_inn_stem(w) and (w not in self.kb_words or zipf(w) < ATTESTED):
                    unknown.append(w)  # a drug by its INN stem, even one the labels mention in passing (finerenone)
                elif w not in self.kb_words and not is_typo_of_common(w, self.kb_words) and not _near(w, NAME_PARTS) \
                        and not is_medical_word(w) and not is_ordinary_form(w, self.kb_words) \
                        and (zipf(w) < ATTESTED or self._near_drug(w) or _drug_slot(words, i, named)):
                    # a word general text attests (a person, a place, an app) is part of the question unless it stands
                    # where a drug does ("take X", "X with warfarin", "X 10 mg") or is as close to a drug name as a
                    # confident misspelling; a word it does not attest stays a possible name wherever it stands
                    unknown.append(w)
        return unknown

    def _near_drug(self, word: str) -> bool:
        """A drug name as close as a confident misspelling would be (one edit under 9 letters, two from 9): an attested
        misspelling ("ibuprophen") that was not linked surely, because another name is as close."""
        choices = self._fuzzy_keys.get(1) or []
        if len(word) < 5 or not choices:
            return False
        found = process.extract(word.lower(), choices, scorer=distance.DamerauLevenshtein.distance,
                                score_cutoff=1 if len(word) < 9 else 2, limit=1)
        return bool(found)

    def _fuzzy(self, gram: str, n_words: int) -> tuple[str | None, bool, list[str]]:
        """(best drug key, confident?, did-you-mean names) for a misspelt name: one edit (a transposition counts as
        one) for names of 5+ letters, two for 9+ letters, with the first letter (for two edits the first two) kept and
        no other drug as close."""
        choices = self._fuzzy_keys.get(n_words)
        if not choices or len(gram) < 5:
            return None, False, []
        found = process.extract(gram, choices, scorer=distance.DamerauLevenshtein.distance, score_cutoff=3, limit=6)
        if not found:
            return None, False, []
        best_key, best_d = found[0][0], found[0][1]
        allowed = 1 if len(gram) < 9 else 2
        best_ids = {eid for typ, eid in self.keys[best_key] if typ == "Drug"}
        rivals = [k for k, d, _ in found[1:] if d <= best_d
                  and {eid for typ, eid in self.keys[k] if typ == "Drug"} != best_ids]
        # two edits leave room for an invented name beside a real one ("Brelomycin" is two from Bleomycin): they
        # count only where the first two letters are kept, as typing slips rarely touch a name's start
        kept = 1 if best_d <= 1 else 2
        sure = best_d <= allowed and not rivals and best_key[:kept] == gram[:kept]
        close = [self.display.get(("Drug", next(iter(sorted(best_ids)))), best_key)] if best_ids and best_d <= 3 else []
        close += [self.display.get(("Drug", eid), k) for k, d, _ in found[1:3] if d <= 2
                  for typ, eid in self.keys[k][:1] if typ == "Drug"]
        return best_key, sure, close

    def prefix_candidates(self, word: str, limit: int = 5) -> list[str]:
        """Drug names that start with an unlinked word ('insulin' → insulin glargine, insulin lispro, ...; '头孢' →
        头孢克肟, 头孢呋辛, …: a Chinese stem names a class), those with a label first, then the shortest."""
        w = norm_name(word)
        zh = has_cjk(w)
        if len(w) < (2 if zh else 4):
            return []
        found = {
            (not self.drug_labels.get(eid), self.display.get(("Drug", eid), eid))
            for k, ids in self.keys.items()
            if ((k.startswith(w) and len(k) > len(w)) if zh else k.startswith(w + " "))
            for typ, eid in ids
            if typ == "Drug"
        }
        return list(dict.fromkeys(name for _, name in sorted(found, key=lambda x: (x[0], len(x[1]), x[1]))))[:limit]

    def link_name(self, name: str) -> list[Link]:
        """Link one drug name given on its own (the /v1/interactions endpoint): exact key, then base name."""
        n = norm_name(name)
        for key in (n, base_name(name)):
            if key in self.keys:
                return [lk for lk in self._resolve(key, name) if lk.type == "Drug"]
        res = self.link(name)
        return res.drugs


NAME_PARTS = sorted(SALT_WORDS | FORM_WORDS)
FUZZY_WORDS = 5  # the longest span read as one misspelt name (product names: "cool relief gel with aloe")
# where a drug name stands: after a verb of taking or a word that joins it to another drug, before a dose, a dosage
# form or a word that joins it; words such as "my", "the" between them are skipped
_SLOT_BEFORE = frozenset("""take takes taking took taken on using use used prescribed given start started starting
    stop stopped stopping switch switched switching mix mixing combine combining plus with vs versus between about
    dose dosage""".split())
_SLOT_AFTER = frozenset("""with plus vs versus mg mcg ug ml tablet tablets tab tabs pill pills capsule capsules cap
    caps cream ointment gel inhaler pen injection injections shot syrup drops spray patch dose doses dosage interact
    interacts interaction interactions together""".split())
_SLOT_FOR = frozenset("prescription prescriptions script scripts rx refill refills".split())
_SLOT_OF = frozenset("""dose doses course bottle box pack tablets pills capsules effects interactions
    warnings ingredients contraindications indications""".split())
_SLOT_JOIN = frozenset("and or & + / ,".split())
_INTENSIFIERS = frozenset("very too really quite super extremely kinda sorta rather damn".split())
_FILLER = frozenset("my the a an some his her their our your any this that".split())


def _drug_slot(words: list[str], i: int, named: set[int]) -> bool:
    """True when words[i] stands where a drug name does: "take X", "on X", "X with …", "X 10 mg", "X tablets", or
    joined by and/or to a word an exact name covered ("warfarin and X")."""
    j = i - 1
    while j >= 0 and words[j] in _FILLER:
        j -= 1
    k = i + 1
    while k < len(words) and words[k] in _FILLER:
        k += 1
    before = words[j] if j >= 0 else ""
    after = words[k] if k < len(words) else ""
    if before in _SLOT_BEFORE or after in _SLOT_AFTER or after.isdigit():
        return True
    two = words[j - 1] if j >= 1 else ""
    if (before == "for" and two in _SLOT_FOR) or (before == "of" and two in _SLOT_OF):
        return True  # "a prescription for an X", "side effects of X", "a dose of X"
    return (before in _SLOT_JOIN and j - 1 in named) or (after in _SLOT_JOIN and k + 1 in named)


def _near(word: str, vocab: list[str]) -> bool:
    """A misspelt salt or dosage-form word ("suulfate", "tabelts") is part of a name, not an unknown drug."""
    return len(word) >= 5 and process.extractOne(word, vocab, scorer=distance.DamerauLevenshtein.distance,
                                                 score_cutoff=1) is not None


def load_synonyms(path: Path | None = None) -> list[list[str]]:
    p = path or DATA / "en_drug_synonyms.tsv"
    rows = [line.rstrip("\n").split("\t") for line in p.read_text(encoding="utf-8").splitlines()]
    return [[x.strip() for x in r if x.strip()] for r in rows if r and r[0] and not r[0].startswith("#")]


def load_zh_en(path: Path | None = None) -> dict[str, str]:
    p = path or DATA / "zh_en_drug_names.tsv"
    with p.open(encoding="utf-8") as f:
        return {r["zh"]: r["en"] for r in csv.DictReader(f, delimiter="\t")}


def load_brands(path: Path | None = None) -> dict[str, str]:
    """Common brand → generic names for brands no bundled label, insert or KG node carries (rag/data/
    en_brand_names.tsv, zh_brand_names.tsv; `path`: one such file); the linker reads them like the zh→en table: the
    brand reaches the generic's id, not the other way round."""
    out: dict[str, str] = {}
    for p in [path] if path else [DATA / "en_brand_names.tsv", DATA / "zh_brand_names.tsv"]:
        lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
        out.update({r["brand"]: r["en"] for r in csv.DictReader(lines, delimiter="\t")})
    return out
