"""Text utilities: language detection and sentence spans with exact character offsets."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any, Literal

from rag.core.errors import InvalidInput
from rag.core.frequency import zh_zipf, zipf

_CJK = re.compile(r"[\u3400-\u9fff]")
# English sentence end: . ! ? followed by space and a capital / digit / bullet / bracket; or a bullet itself.
_EN_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9•(\[])|\s+(?=•)|(?<=[.!?:])\s+(?=\d+(\.\d+)*\s+[A-Z])")
_ZH_END = re.compile(r"(?<=[。！？；!?;])|\n+")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|vs|approx|Dr|Fig|No|Ref|St|Inc|Ltd|mg|mL|U\.S|etc|al)\.)$", re.I)


_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(q: Any, max_chars: int, what: str = "question") -> str:
    """User text with control characters removed and whitespace trimmed; InvalidInput when empty or too long."""
    if not isinstance(q, str):
        raise InvalidInput(f"{what} must be a string")
    q = _CTRL.sub(" ", q).strip()
    if not q:
        raise InvalidInput(f"{what} is empty: ask about a drug, e.g. 'What is warfarin used for?'")
    if len(q) > max_chars:
        raise InvalidInput(f"{what} is too long ({len(q)} characters; the limit is {max_chars})")
    return q


_T2S_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _t2s() -> Any:
    from opencc import OpenCC  # opencc-python-reimplemented: pure Python, its dictionaries in the wheel

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese characters as simplified (華法林 → 华法林, 劑量 → 剂量; phrase-level, OpenCC's tables), so
    a question from Taiwan or Hong Kong links names and matches cues written in simplified. Text without CJK is
    returned as is; simplified text comes back unchanged (all 1,056 Chinese dev questions)."""
    if not _CJK.search(text):
        return text
    with _T2S_LOCK:  # OpenCC's converter keeps state between calls
        return str(_t2s().convert(text))


# Written Cantonese (粤语), read as Mandarin so that linking, population and cue rules written for Mandarin apply:
# "有咗BB仲可唔可以食X" is "怀孕了还可不可以吃X". Only text with a character Mandarin does not use (唔, 冇, 咗, 嘅, 佢,
# 啲, 嘢, 喺, 嚟, 睇, 瞓, 攞, 搵, 咩, 乜, 噉) or a Cantonese-only word is rewritten, and only word by word: the
# Mandarin question comes back unchanged. Applied after to_simplified (係 → 系, 點樣 → 点样).
_YUE_MARK = re.compile(r"[唔冇咗嘅佢啲嘢喺嚟睇瞓攞搵咩乜噉]|点样|几多|屋企|而家|宜家|^呢|呢(?=[只个种款支粒])")
_YUE_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(a, re.I), b) for a, b in (
        (r"有咗\s*bb|有咗身孕?|大咗肚", "怀孕了"),
        (r"(?<![a-z])bb(?![a-z])", "宝宝"),
        (r"使唔使", "需不需要"), (r"(\w)唔\1", r"\1不\1"), (r"系咪", "是不是"), (r"系唔系", "是不是"),
        (r"点样|(?<![早晚快慢一多少有些好差])点(?=[吃食用服饮搽])", "怎么"), (r"点解", "为什么"),
        (r"几多", "多少"), (r"几时", "什么时候"), (r"边个", "哪个"), (r"边度", "哪里"),
        (r"咩嘢|乜嘢|咩|乜", "什么"), (r"唔该", "请"),
        (r"佢哋", "他们"), (r"佢", "他"), (r"冇", "没有"), (r"咗", "了"), (r"嘅", "的"), (r"啲", "些"),
        (r"嘢", "东西"), (r"喺", "在"), (r"嚟", "来"), (r"睇", "看"), (r"瞓", "睡"), (r"攞", "拿"), (r"搵", "找"),
        (r"噉|咁样", "这样"), (r"唔", "不"), (r"(?<![关联体派谱])系(?![统列数])", "是"), (r"仲(?!裁)", "还"),
        (r"屋企", "家里"), (r"而家|宜家", "现在"), (r"阿爷", "爷爷"), (r"阿嫲", "奶奶"), (r"阿妈", "妈妈"),
        (r"阿爸", "爸爸"), (r"细路仔?", "小孩"), (r"呢(?=[只个种款支粒])", "这"), (r"成日", "经常"),
        (r"[份分]量", "用量"), (r"肚屙", "腹泻"), (r"同埋", "和"), (r"一齐", "一起"),
        # 食 is 吃 unless it is part of a Mandarin word (食物, 饮食, 禁食, 食欲, 食道 …)
        (r"(?<![饮进禁零主膳甜肉素流伙粮节绝暴偏副美忌])食(?![物品欲道管用疗盐醋材谱量堂])", "吃"),
    )
)


def to_mandarin(text: str) -> str:
    """Written Cantonese as Mandarin (see _YUE_WORDS); any other text unchanged. Expects simplified characters."""
    if not _YUE_MARK.search(text):
        return text
    for rx, rep in _YUE_WORDS:
        text = rx.sub(rep, text)
    return text


def read_chinese(text: str) -> str:
    """A question as the rules read it: simplified characters, written Cantonese as Mandarin."""
    return to_mandarin(to_simplified(text))


def detect_language(text: str) -> Literal["en", "zh"]:
    """'zh' when the text has any CJK character, else 'en' (drug names in Latin script are common in zh text)."""
    return "zh" if _CJK.search(text) else "en"


def sentence_spans(text: str, max_len: int = 600) -> list[tuple[int, int]]:
    """Sentence spans [start, end) over `text`, whitespace trimmed; long sentences split at spaces near max_len."""
    cuts = {0, len(text)}
    for m in _EN_END.finditer(text):
        if _ABBREV.search(text[max(0, m.start() - 6): m.start()]):
            continue
        cuts.add(m.end())
    for m in _ZH_END.finditer(text):
        cuts.add(m.end())
    bounds = sorted(cuts)
    spans: list[tuple[int, int]] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        while b - a > max_len:  # split an over-long run at the last space before max_len
            cut = text.rfind(" ", a + max_len // 2, a + max_len)
            cut = cut if cut > a else a + max_len
            end = cut
            while end > a and text[end - 1].isspace():
                end -= 1
            spans.append((a, end))
            a = cut
            while a < b and text[a].isspace():
                a += 1
        if b > a:
            spans.append((a, b))
    return spans


def tokens_for_overlap(text: str) -> set[str]:
    """Lowercased word tokens plus CJK bigrams; for overlap scoring of sentences against questions/facts."""
    t = text.lower()
    words = set(re.findall(r"[a-z][a-z0-9\-]{2,}", t))
    for run in re.findall(r"[\u3400-\u9fff]+", t):
        words.update(run[i: i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            words.add(run)
    return words


# -- a question as the retriever reads it ------------------------------------------------------------------------------
# Clinical shorthand for what a label says, written out so that the intent classifier and the cue rules read the
# words the labels use (a fixed list of standard abbreviations, not phrasings: "ADRs w/ X" was a dosage question).
# "pt" only in lower case: "PT/INR" is prothrombin time.
_SHORTHAND: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rx, re.I), out) for rx, out in (
        (r"\bADRs?\b", "adverse drug reactions"), (r"\bAEs\b", "adverse events"), (r"\bBBWs?\b", "boxed warning"),
        (r"\bDDIs?\b", "drug interactions"), (r"\bMoA\b", "mechanism of action"), (r"\bCrCl\b", "creatinine clearance"),
        (r"\bLFTs?\b", "liver function tests"), (r"\bw/o\b", "without"), (r"\bw/\s*(?=\w)", "with "),
        (r"\b(\d+)\s?y/?o\b", r"\1 year old"), (r"(?-i:\bpts?\b)(?=[\s,.:;?!]|$)", "patient"), (r"\bhx\b", "history"),
        (r"\bcontradictions?\b", "contraindications"), (r"\bside[- ]?affects?\b", "side effects"),
    ))
# label headings and the words people ask them with; a same-sounding slip of one (付作用, 禁急, 用发用量, 相互做用:
# pinyin input) or the pinyin itself typed in latin letters ("fuzuoyong", "yongliang", "heikuang") is read as it
_ZH_TERMS = ("副作用", "不良反应", "禁忌", "适应症", "用法用量", "用法", "用量", "相互作用", "成分", "注意事项", "黑框",
             "警告", "贮藏", "过量", "药理", "剂量", "孕妇", "哺乳")
# same-sounding slips are read only for these: a two-character heading word is too easily one character off ordinary
# text that sounds the same (药里 "in the medicine" / 药理, 作用伐 Shanghainese 伐 / 用法)
_ZH_SLIP_TERMS = ("副作用", "不良反应", "禁忌", "适应症", "用法用量", "相互作用", "注意事项", "治什么病", "治啥病",
                  "治哪些病")  # and the question "what does it treat" (只什么病: voice input)
_EN_TERMS = ("indications", "contraindications", "ingredients", "interactions", "warnings", "precautions", "dosage",
             "dosing", "adverse", "reactions", "overdose", "overdosage", "pregnancy", "breastfeeding", "information",
             "interaction", "ingredient", "contraindication", "indication", "precaution", "warning", "boxed",
             "lactation", "pediatric", "paediatric", "geriatric", "storage", "mechanism", "pharmacology", "hepatic",
             "renal", "excipients", "administration")


@lru_cache(maxsize=1)
def _pinyin_terms() -> dict[str, str]:
    from pypinyin import lazy_pinyin

    latin = {"".join(lazy_pinyin(t)): t for t in _ZH_TERMS}
    return latin


@lru_cache(maxsize=1)
def _pinyin_initials() -> tuple[dict[str, str], re.Pattern[str]]:
    """Pinyin initials of the heading words, as Chinese internet writing abbreviates them ("fzy" 副作用, "zysx"
    注意事项, "yfyl" 用法用量): only those of 3+ letters that stand for one term alone (yl is 用量 and 药理; jj is
    too short). The initials → term table, and the pattern that finds them as whole words."""
    from pypinyin import lazy_pinyin

    initials: dict[str, list[str]] = {}
    for t in _ZH_TERMS:
        initials.setdefault("".join(p[0] for p in lazy_pinyin(t)), []).append(t)
    table = {k: v[0] for k, v in initials.items() if len(k) >= 3 and len(v) == 1}
    return table, re.compile(r"\b(?:" + "|".join(sorted(table, key=len, reverse=True)) + r")\b", re.I | re.A)


def _zh_initials(text: str) -> str:
    table, rx = _pinyin_initials()
    return rx.sub(lambda m: table[m.group().lower()], text)


def _zh_slips(text: str) -> str:
    from pypinyin import lazy_pinyin

    latin = _pinyin_terms()
    text = re.sub(r"[A-Za-z]{5,}", lambda m: latin.get(m.group().lower(), m.group()), text)
    for term in sorted(_ZH_SLIP_TERMS, key=len, reverse=True):
        n, want = len(term), tuple(lazy_pinyin(term))
        for run in set(re.findall(r"[\u4e00-\u9fff]{" + str(n) + ",}", text)):
            for i in range(len(run) - n + 1):
                sub = run[i: i + n]
                # one character off, same sound, and not itself a word (紧急 "urgent" sounds like 禁忌)
                if sub != term and sum(a != b for a, b in zip(sub, term, strict=True)) == 1 \
                        and zh_zipf(sub) < 2.0 and tuple(lazy_pinyin(sub)) == want:
                    text = text.replace(sub, term)
    return text


def _en_slips(text: str) -> str:
    from rapidfuzz import distance, process

    def fix(m: re.Match[str]) -> str:
        w = m.group()
        if len(w) < 7 or zipf(w) >= 2.5:
            return w
        best = process.extractOne(w.lower(), _EN_TERMS, scorer=distance.DamerauLevenshtein.distance, score_cutoff=2)
        return str(best[0]) if best and best[1] else w  # a heading word as typed stays as typed

    return re.sub(r"[A-Za-z]+", fix, text)


def read_question(text: str) -> str:
    """The question as retrieval reads it: simplified Mandarin (read_chinese), clinical shorthand written out, and a
    misspelt or same-sounding label-heading word read as that word ("indicaitons", "ingrediants", 付作用, "fuzuoyong").
    The answer still echoes the question as asked."""
    text = read_chinese(text)
    for rx, out in _SHORTHAND:
        text = rx.sub(out, text)
    text = _zh_initials(text)
    if _CJK.search(text):
        text = _zh_slips(text)
    return _en_slips(text)
