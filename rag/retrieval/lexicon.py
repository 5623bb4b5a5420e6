"""Is a word of a question an ordinary English word, or could it be a drug name?

The entity linker asks this about words that matched no name in the knowledge base: an ordinary word ("grandma",
"kidneys", a typo of one such as "pregnent") is just part of the question, while a name-like word ("Zorblaxin",
"metfromin") is a drug the KB does not know or a misspelling of one it does. Word frequencies come from `wordfreq`
(its English list ships inside the package; nothing is downloaded): a word is ordinary when it is common (Zipf ≥ 2.5,
i.e. more than ~3 per 10 million words) or one edit away from a very common word (Zipf ≥ 3.5). Drug names are rare
in general text (warfarin 2.6 is linked before this is asked; newer and invented names are 0).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path

from rag.core.frequency import zh_freq as _zh_freq
from rag.core.frequency import zipf

COMMON = 2.5
VERY_COMMON = 3.5
_LETTERS = string.ascii_lowercase
_WORD = re.compile(r"[a-z][a-z]{2,}")
LEXICON_FILE = "lexicon/kb_words.txt"


def edits1(w: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away from `w` (Norvig's edits1)."""
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    transposes = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in _LETTERS]
    inserts = [a + c + b for a, b in splits for c in _LETTERS]
    return set(deletes + transposes + replaces + inserts)


def is_rare(word: str) -> bool:
    """A word of four or more letters that general English text seldom uses: a candidate drug name."""
    w = word.lower()
    return len(w) >= 4 and w.isalpha() and zipf(w) < COMMON


def is_typo_of_common(word: str, known: frozenset[str] = frozenset()) -> bool:
    """One edit away from a very common English word ("pregnent" → pregnant, "chidren" → children) or from a word of
    the knowledge base's own label text (`known`: "creatnine" → creatinine)."""
    return any(zipf(v) >= VERY_COMMON or v in known for v in edits1(word.lower()) if len(v) >= 3)


_SUFFIXES = (("ings", "ing"), ("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""),
             ("ing", "e"))


def is_ordinary_form(word: str, known: frozenset[str] = frozenset()) -> bool:
    """An inflected form of a common word ("colourings": colouring) or a compound of two very common words of 3+
    letters each ("bloodwork", "labwork", "hayfever"), which wordfreq lists as rare. No drug name is built so (invented
    ones are not either: "Zorblaxin", "Plivotrem", "Nexadrolin"); an unknown brand made of two words ("Nightcalm")
    is then read as ordinary text, and the question is answered about the drugs it does name."""
    w = word.lower()
    for suffix, repl in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            base = w[: -len(suffix)] + repl
            if zipf(base) >= COMMON or base in known:
                return True
    return any(zipf(w[:i]) >= VERY_COMMON and zipf(w[i:]) >= VERY_COMMON for i in range(3, len(w) - 2))


# A word general text attests (Zipf ≥ 1: names of people and places, apps, slang, "telehealth", "kombucha") is not an
# invented drug name: every invented name of the eval sets' 99 scores 0. Real drugs the KB lacks are mostly 0 too
# (tirzepatide, paxlovid, mounjaro); the few attested ones are caught by their INN stem or by a close drug name.
ATTESTED = 1.0

# WHO INN stems (the endings that name a drug class in "The use of stems in the selection of INN"), with 3+ letters
# before them: a rare word built so names a drug even where the KB's label text mentions it without a label or graph
# node of its own (finerenone, vericiguat). Stems that also end class or chemistry words are left out (-tide:
# peptide; -azole: imidazole; -penem: carbapenem; -olone: quinolone; -caine, -sone, -cort, -quine).
_INN_STEM = re.compile(
    r"(?<=[a-z]{3})(?:prilat|pril|sartan|olol|alol|dipine|mab|tinib|ciclib|lisib|rafenib|parib|zomib|vir|gliflozin|"
    r"gliptin|glutide|relin|relix|conazole|prazole|dazole|tidine|setron|triptan|lukast|cillin|bactam|cycline|mycin|"
    r"micin|oxacin|statin|fibrate|dronate|parin|xaban|gatran|profen|fenac|coxib|semide|thiazide|orexant|gepant|"
    r"ciguat|siran|nersen|renone|lutamide|platin|rubicin|taxel|azepam|zolam|oxetine|triptyline|pramine|peridol|"
    r"terol|sonide|betasol|vudine|afil|pidem|barbital|curonium|fungin|zosin|tiazem|pamil)$")


def has_inn_stem(word: str) -> bool:
    """A word that ends in a WHO INN stem after 3+ letters ("finerenone", "tirzepatide" does not: -tide is left out)."""
    return bool(_INN_STEM.search(word.lower()))


# English medical word-formation that no drug name uses: specialists and specialties (rheumatologist, podiatrist,
# pediatrician), conditions (pancreatitis, hypokalemia, neuropathy), procedures (cholecystectomy, colonoscopy).
_MEDICAL_WORD = re.compile(
    r"(?:olog(?:y|ies|ist|ists|ic|ical)|iatr(?:y|ic|ics|ist|ists|ician|icians)|icians?|ists?|itis|osis|oses|a?emia|"
    r"algia|pathy|opath(?:s|ic)?|ectom(?:y|ies)|otom(?:y|ies)|ostom(?:y|ies)|oscop(?:y|ies)|ograph(?:y|ies)|plast(?:y|ies)|"
    r"therap(?:y|ies|ist|ists)|uria|penia|plegia|phobia|iasis)$|^obgyn$")


def is_medical_word(word: str) -> bool:
    """An English word built like a specialty, condition or procedure: part of the question, not a drug name."""
    return bool(_MEDICAL_WORD.search(word.lower()))


def label_words(texts: Iterable[str]) -> set[str]:
    """Lower-case latin words (3+ letters) of label text: the KB's own vocabulary, jargon included ("egfr")."""
    out: set[str] = set()
    for t in texts:
        out.update(_WORD.findall(t.lower()))
    return out


def write_lexicon(home: Path, words: Iterable[str]) -> Path:
    p = home / LEXICON_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(sorted(words)) + "\n", encoding="utf-8")
    return p


def read_lexicon(home: Path) -> frozenset[str]:
    """The KB vocabulary written by ingest; empty for a KB ingested before it existed (wordfreq alone then)."""
    p = home / LEXICON_FILE
    return frozenset(p.read_text(encoding="utf-8").split()) if p.exists() else frozenset()


ZH_WORD = 1.8  # a Chinese word of 2+ characters this common (早上 4.9, 饭后 3.0, 肌酐 1.95) is ordinary text
ZH_CHAR = 4.5  # a single character this common (的, 吃, 说, 孕) joins words


ZH_COMMON_WORD = 2.5  # a whole Chinese word this common (胃痛 2.9, 消炎 2.9, 甲状腺 3.5) is everyday language


def is_ordinary_chinese(run: str) -> bool:
    """Chinese text made of common words ("早上", "医生说", "饭后半小时"), not a name: it splits into words of 2+
    characters with Zipf ≥ ZH_WORD and single characters with Zipf ≥ ZH_CHAR. Invented names do not (璎钶苒桐: each
    character is rare) and neither do drug names (佐布拉汀, 奥司他韦)."""
    freq = _zh_freq()
    n = len(run)
    ok = [True] + [False] * n  # ok[i]: run[:i] splits into ordinary pieces
    for i in range(n):
        if not ok[i]:
            continue
        for j in range(i + 1, min(n, i + 8) + 1):
            w = run[i:j]
            if freq.get(w, 0.0) >= (ZH_CHAR if j - i == 1 else ZH_WORD):
                ok[j] = True
    return ok[n]
