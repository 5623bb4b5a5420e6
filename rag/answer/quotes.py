"""Locating quotes in source text (exact, or whitespace-, case- and punctuation-insensitive mapped back to exact
offsets), how much of a claim a sentence covers, and the sentence windows of a text that best answer a question."""

from __future__ import annotations

import re
import unicodedata

from rag.core.text import sentence_spans, tokens_for_overlap

MAX_QUOTE = 300
MAX_FACT_CHARS = 600
MIN_QUOTE_CHARS = 6  # a shorter "quote" is found anywhere and proves nothing: treat it as missing

_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u3000": " ",
}


def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """Casefolded text with whitespace runs collapsed and quote/dash variants folded; map[i] = index in `text`."""
    out: list[str] = []
    idx: list[int] = []
    prev_space = True  # also strips leading whitespace
    for i, ch in enumerate(text):
        ch = _FOLD.get(ch, ch)
        if ch.isspace():
            if not prev_space:
                out.append(" ")
                idx.append(i)
            prev_space = True
            continue
        prev_space = False
        ch = unicodedata.normalize("NFKC", ch).casefold()
        for c in ch:
            out.append(c)
            idx.append(i)
    if out and out[-1] == " ":
        out.pop()
        idx.pop()
    return "".join(out), idx


def locate_quote(quote: str, text: str) -> tuple[int, int] | None:
    """[start, end) of `quote` in `text`: exact, else whitespace/case/punctuation-insensitive mapped back."""
    q = quote.strip()
    if len(q) < MIN_QUOTE_CHARS:
        return None
    i = text.find(q)
    if i >= 0:
        return i, i + len(q)
    nq, _ = _normalise_with_map(q)
    nt, idx = _normalise_with_map(text)
    if len(nq) < MIN_QUOTE_CHARS:
        return None
    j = nt.find(nq)
    if j < 0:
        return None
    return idx[j], idx[j + len(nq) - 1] + 1


_NUM = re.compile(r"\d+(?:\.\d+)?")


def _overlap_tokens(text: str) -> set[str]:
    return tokens_for_overlap(text) | set(_NUM.findall(text))


def support_score(claim: str, sentence: str) -> float:
    """Share of the claim's content words (and numbers) that the sentence contains."""
    c = _overlap_tokens(claim)
    return len(c & _overlap_tokens(sentence)) / len(c) if c else 0.0


_Q_STOP = tokens_for_overlap(
    "what which who when how does do is are the for of and can take taking used use with should not have has "
    "recommended dose drug drugs medicine about tell me any there this that patients patient warning boxed "
    "together interact interactions effects side"
)
_HEADING = re.compile(r"^(\d+(\.\d+)*\s+)?[A-Z][A-Z0-9 &,/()\-]{3,}(?=\s+[A-Z•\d(])")


def best_spans(text: str, question: str, exclude: set[str], lead: bool, max_chars: int = MAX_FACT_CHARS,
               n: int = 2) -> list[tuple[int, int]]:
    """Contiguous sentence windows of `text` that best answer `question` (verbatim spans)."""
    spans = sentence_spans(text)
    if not spans:
        return []
    qtok = tokens_for_overlap(question) - _Q_STOP - exclude
    scores = []
    for i, (a, b) in enumerate(spans):
        stoks = tokens_for_overlap(text[a:b])
        s = 2.0 * len(qtok & stoks)
        if lead:
            s += max(0.0, 1.5 - 0.5 * i)
        if _HEADING.match(text[a:b]) and b - a < 60:
            s -= 1.0
        scores.append(s)
    order = sorted(range(len(spans)), key=lambda i: (-scores[i], i))
    out: list[tuple[int, int]] = []
    used: set[int] = set()
    for i in order:
        if len(out) >= n or i in used:
            continue
        if out and scores[i] <= 0:
            break
        a, b = spans[i]
        j = i
        while j + 1 < len(spans) and spans[j + 1][1] - a <= max_chars:  # extend forward: lists follow their lead-in
            j += 1
            if scores[j] <= 0 and not lead and j > i:
                j -= 1
                break
        b = spans[j][1]
        used.update(range(i, j + 1))
        # drop a bare heading ("1 INDICATIONS AND USAGE") from the front of the quote
        m = _HEADING.match(text[a:b])
        if m and m.end() < b - a - 20:
            a2 = a + m.end()
            while a2 < b and text[a2].isspace():
                a2 += 1
            a = a2
        out.append((a, b))
    return sorted(out)
