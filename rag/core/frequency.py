"""Word frequencies from `wordfreq` (its English and Chinese lists ship inside the package; nothing is downloaded):
how common a word is in general text. The question reader (rag.core.text) and the entity linker's lexicon
(rag.retrieval.lexicon) both ask it."""

from __future__ import annotations

import functools
import math


@functools.lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """Zipf frequency of an English word (log10 per billion words; 0 = not in wordfreq's list)."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word.lower(), "en"))


@functools.lru_cache(maxsize=1)
def zh_freq() -> dict[str, float]:
    """wordfreq's Chinese list (334k words, inside the package; read without its jieba tokenizer), as Zipf values."""
    from wordfreq import get_frequency_dict

    return {w: math.log10(f * 1e9) for w, f in get_frequency_dict("zh").items() if f > 0}


def zh_zipf(word: str) -> float:
    """Zipf frequency of a whole Chinese word in wordfreq's list (0 when it is not listed as one word)."""
    return zh_freq().get(word, 0.0)
