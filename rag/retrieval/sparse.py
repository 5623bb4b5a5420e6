"""Keyword sparse vectors for hybrid retrieval (the `sparse` named vector of every chunk), and a keyword tokenizer.

`sparse_doc` / `sparse_query` are qdrant-edge's built-in BM25 (`qdrant_edge.Bm25`, Rust, in process) with the
`multilingual` tokenizer: Chinese is segmented into words (孕妇/禁用, 哪些/禁忌; unknown names fall back to single
characters), English is lowercased, Snowball-stemmed and stopword-filtered. Documents get BM25 term weights
tf·(k+1)/(tf + k·(1−b+b·dl/avg_len)) (k 1.2, b 0.75, avg_len AVG_LEN); a query weighs each distinct term 1.0; the
store multiplies by IDF (Qdrant's sparse modifier IDF), so the dot product is BM25. Both vector stores (qdrant-edge
and Qdrant server) receive the same vectors, computed here: the server could compute them itself
(`Document(model="Qdrant/bm25")`), but computing them in process keeps the two backends identical, needs no
server-side inference, and works with qdrant-client's local mode in tests. Replacing the earlier hand-written
encoder (the tokenizer below) was measured with `python -m bench.keywords` on every chunk of the sample: see
README "Measured".

`tokenize` (the earlier encoder's tokenizer, kept for the deterministic HashEmbedder and as the benchmark's
baseline) is language-agnostic and dependency-free:
  * NFKC, then lowercase (full-width letters and digits become ASCII);
  * latin/other alphabetic scripts: words that start with a letter and may contain digits ("cyp3a4", "h2o"),
    a small English stopword list dropped, plural "-s"/"-ies" stripped (a light S-stemmer);
  * numbers as their own tokens, decimals kept whole ("5.1", "0.25"); "10mg" → "10", "mg";
  * CJK (Chinese, Japanese kana, Hangul) runs: every character (unigram) AND every adjacent pair (bigram),
    because Chinese has no spaces and a bigram approximates a word.

A token maps to an index by a stable 31-bit blake2b hash (`token_index`), identical across processes and
machines; never Python's `hash()` (salted per process). Colliding tokens simply share a dimension.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from hashlib import blake2b
from typing import Any

from rag.stores.base import SparseVec

AVG_LEN = 150.0  # typical chunk length in BM25 tokens (1,500-character chunks; Chinese inserts are shorter)
SPARSE_VERSION = "bm25-multilingual-1"  # stored vectors depend on it: part of the ingest's index hash
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


@lru_cache(maxsize=1)
def _bm25() -> Any:
    from qdrant_edge import Bm25, Bm25Config, TokenizerType

    return Bm25(Bm25Config(k=1.2, b=0.75, avg_len=AVG_LEN, tokenizer=TokenizerType.Multilingual,
                           language="english", max_token_len=MAX_TOKEN_LEN))


def _vec(v: Any) -> SparseVec:
    pairs = sorted(zip(v.indices, v.values, strict=True))
    return SparseVec(indices=[int(i) for i, _ in pairs], values=[float(x) for _, x in pairs])


def sparse_doc(text: str) -> SparseVec:
    """BM25 document term weights of `text`; indices sorted and unique."""
    return _vec(_bm25().embed_document(text))


def sparse_docs(texts: Iterable[str]) -> list[SparseVec]:
    return [sparse_doc(t) for t in texts]


def sparse_query(text: str) -> SparseVec:
    """Each distinct query term weighs 1.0 (IDF comes from the store)."""
    return _vec(_bm25().embed_query(text))
