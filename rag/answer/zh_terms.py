"""Chinese terms for the English words of a label quote, for Chinese answers that quote an English label.

The table (rag/data/en_zh_medical_terms.tsv: conditions and symptoms as labels write them) is matched on word
boundaries, longest term first, so "juvenile idiopathic arthritis" wins over "arthritis". Each match is shown beside
the English words it came from and cites the quote that holds them (Answer.glossary; rag.answer.verify drops any
whose words are not in that quote). Why a table and not the embedder: matching label phrases against the Chinese KG's
disease and symptom names with multilingual-e5-small put right and wrong best matches at the same cosines (see the
table's header), so no confidence floor would keep only right ones.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "data" / "en_zh_medical_terms.tsv"
MAX_TERMS = 8


@lru_cache(maxsize=1)
def _table() -> tuple[re.Pattern[str], dict[str, str]]:
    lines = [ln for ln in TABLE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    zh = {r["en"].strip().lower(): r["zh"].strip() for r in csv.DictReader(lines, delimiter="\t")}
    alt = "|".join(re.escape(k) for k in sorted(zh, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alt})(?![\w-])", re.I), zh


def gloss(text: str, limit: int = MAX_TERMS) -> list[tuple[str, str]]:
    """(the English words as written in `text`, the Chinese term), in order of appearance, one per Chinese term."""
    rx, zh = _table()
    out: dict[str, str] = {}
    for m in rx.finditer(text):
        term = zh[m.group().lower()]
        if term not in out.values():
            out[m.group()] = term
        if len(out) >= limit:
            break
    return list(out.items())
