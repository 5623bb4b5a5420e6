"""Keyword sparse vectors for hybrid retrieval (the `sparse` named vector of every chunk).

`tokenize` is language-agnostic and dependency-free:
  * NFKC, then lowercase (full-width letters and digits become ASCII);
  * latin/other alphabetic scripts: words that start with a letter and may contain digits ("cyp3a4", "h2o"),
    a small English stopword list dropped, plural "-s"/"-ies" stripped (a light S-stemmer);
  * numbers as their own tokens, decimals kept whole ("5.1", "0.25"); "10mg" → "10", "mg";
  * CJK (Chinese, Japanese kana, Hangul) runs: every character (unigram) AND every adjacent pair (bigram),
    because Chinese has no spaces and a bigram approximates a word.

`sparse_doc` gives BM25 document term weights (k1=1.2, b=0.75, avgdl=150 tokens); `sparse_query` weights each
distinct query term 1.0. The store multiplies by IDF (Qdrant sparse modifier IDF), so the dot product is BM25.

A token maps to an index by a stable 31-bit blake2b hash (`token_index`), identical across processes and
machines; never Python's `hash()` (salted per process). Colliding tokens simply share a dimension.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from hashlib import blake2b

from rag.stores.base import SparseVec

K1 = 1.2
B = 0.75
AVGDL = 150.0  # typical chunk length in tokens (latin words + CJK characters)
MAX_TOKEN_LEN = 64

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# CJK run | number (decimals kept) | word: a letter, then letters/digits. CJK is excluded from words.
_TOKEN_RE = re.compile(rf"[{_CJK}]+|\d+(?:\.\d+)*|[^\W\d_{_CJK}][^\W_{_CJK}]*")
_CJK_RE = re.compile(rf"[{_CJK}]")

STOPWORDS: frozenset[str] = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has have having he her
    here hers him his how i if in into is it its itself me my no nor not of off on once only or other our ours
    out over own s same she should so some such t than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who whom why will with
    would you your yours""".split()
)

_CACHE_MAX = 500_000
_word_cache: dict[str, str | None] = {}  # raw latin token → normalised token (None = dropped)
_index_cache: dict[str, int] = {}


def token_index(token: str) -> int:
    """Stable sparse dimension of a token: the first 4 bytes of blake2b, as a non-negative 31-bit int."""
    idx = _index_cache.get(token)
    if idx is None:
        idx = int.from_bytes(blake2b(token.encode("utf-8"), digest_size=4).digest(), "big") & 0x7FFFFFFF
        if len(_index_cache) >= _CACHE_MAX:
            _index_cache.clear()
        _index_cache[token] = idx
    return idx


def _stem(word: str) -> str:
    """Light plural stripping (Harman's S-stemmer, simplified): tablets→tablet, therapies→therapy."""
    n = len(word)
    if n > 4 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if n > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _norm_word(raw: str) -> str | None:
    if raw in STOPWORDS or len(raw) > MAX_TOKEN_LEN:
        return None
    if raw[0].isdigit():
        return raw
    return _stem(raw)


def _tokens(text: str) -> Iterable[tuple[str, bool]]:
    """(token, counts_for_length) pairs; CJK bigrams do not count towards document length."""
    text = unicodedata.normalize("NFKC", text).lower()
    cache = _word_cache
    for raw in _TOKEN_RE.findall(text):
        if _CJK_RE.match(raw):
            prev = ""
            for ch in raw:
                yield ch, True
                if prev:
                    yield prev + ch, False
                prev = ch
            continue
        try:
            tok = cache[raw]
        except KeyError:
            tok = _norm_word(raw)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[raw] = tok
        if tok is not None:
            yield tok, True


def tokenize(text: str) -> list[str]:
    """Index terms of `text` in order (CJK: each character followed by its bigram with the previous one)."""
    return [tok for tok, _ in _tokens(text)]


def _counts(text: str) -> tuple[dict[int, int], int]:
    counts: dict[int, int] = {}
    length = 0
    for tok, counted in _tokens(text):
        idx = token_index(tok)
        counts[idx] = counts.get(idx, 0) + 1
        length += counted
    return counts, length


def sparse_doc(text: str) -> SparseVec:
    """BM25 document weights tf·(k1+1)/(tf + k1·(1−b+b·dl/avgdl)); indices sorted and unique."""
    counts, dl = _counts(text)
    norm = K1 * (1.0 - B + B * dl / AVGDL)
    indices = sorted(counts)
    values = [(tf := counts[i]) * (K1 + 1.0) / (tf + norm) for i in indices]
    return SparseVec(indices=indices, values=values)


def sparse_docs(texts: Iterable[str]) -> list[SparseVec]:
    return [sparse_doc(t) for t in texts]


def sparse_query(text: str) -> SparseVec:
    """Each distinct query term weighs 1.0 (IDF comes from the store)."""
    indices = sorted({token_index(tok) for tok, _ in _tokens(text)})
    return SparseVec(indices=indices, values=[1.0] * len(indices))
