"""Text utilities: language detection and sentence spans with exact character offsets."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any, Literal

from rag.core.errors import InvalidInput

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
