"""Entity linking: drugs (generic, brand, substance, salt forms, Chinese names) and diseases named in a question.

The dictionary is built once from the graph (Drug names and aliases, Disease names) plus the bundled zh→en drug
name table, keyed by both the normalised surface form and the base name (salts and dosage forms stripped). Matching
is longest-first over word n-grams (Latin script) and substrings (Chinese), so "warfarin sodium", "WARFARIN" and
"华法林钠片" all reach Drug "warfarin"; several drugs in one question are all found.
"""

from __future__ import annotations

import csv
import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from kb_loaders.names import base_name, has_cjk, norm_name
from rag.answer.schema import LinkedEntity

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
    mechanism work works dosing twice once three times hours weeks days infants infant black label labels
    lactation nursing kidney liver renal hepatic function impairment heart blood pressure also still just really
    much more most less least like likely cause causes caused work""".split()
)
ZH_QUESTION_WORDS = re.compile(
    r"(的|是|什么|哪些|有|吗|呢|么|怎么|如何|可以|能|能否|一起|同时|和|与|跟|及|服用|使用|吃|用|适应症|适应证|功能主治|主治|"
    r"治疗|用法|用量|剂量|禁忌|不良反应|副作用|注意事项|相互作用|孕妇|儿童|老人|请问|我|想|知道|药|这个|那个|这种|那种|该|此|它|"
    r"这|那|多少|几|一次|一天|每次|每天|需要|应该|要|？|\?|。|，|,|\s)+"
)
_LATIN_CJK = re.compile(r"(?<=[A-Za-z0-9])(?=[\u3400-\u9fff])|(?<=[\u3400-\u9fff])(?=[A-Za-z0-9])")


@dataclass
class Link:
    id: str
    type: str  # Drug | Disease
    name: str
    matched: str
    label_ids: list[str] = field(default_factory=list)

    def entity(self) -> LinkedEntity:
        return LinkedEntity(
            id=self.id, type=self.type, name=self.name, matched=self.matched, in_labels=bool(self.label_ids)
        )


@dataclass
class LinkResult:
    links: list[Link]
    unlinked: list[str]  # name-like words of the question that matched nothing (an unknown drug?)
    suggestions: list[str] = field(default_factory=list)  # close dictionary names for unlinked words

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
    ) -> None:
        self.drug_labels = drug_labels
        self.display: dict[tuple[str, str], str] = {}
        # key → list of (type, id); several ids per key are possible (e.g. 华法林 → warfarin and 华法林)
        self.keys: dict[str, list[tuple[str, str]]] = {}
        self.translated: set[str] = set()  # ids reached through the zh→en table: preferred over graph-only zh ids
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
        self.max_words = max((len(k.split()) for k in self.keys if not has_cjk(k)), default=8)
        self.max_zh = max((len(k) for k in self.keys if has_cjk(k)), default=2)
        self._en_vocab = [k for k in self.keys if not has_cjk(k) and len(k) >= 5]
        log.info("entity linker: %d keys", len(self.keys))

    def _add(self, typ: str, eid: str, name: str) -> None:
        for key in {norm_name(name), base_name(name)}:
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
        ids = self.keys[key]
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
        q = norm_name(_LATIN_CJK.sub(" ", question))
        links: list[Link] = []
        seen: set[tuple[str, str]] = set()
        unlinked: list[str] = []

        def add(found: list[Link]) -> None:
            # keep every drug id for a key (a zh name may map to an en drug with labels and a graph-only drug),
            # but only the best disease
            for lk in found:
                if (lk.type, lk.id) not in seen:
                    seen.add((lk.type, lk.id))
                    links.append(lk)

        for part in q.split():
            if has_cjk(part):
                i = 0
                while i < len(part):
                    for L in range(min(self.max_zh, len(part) - i), 1, -1):
                        sub = part[i : i + L]
                        if sub in self.keys:
                            add(self._resolve(sub, sub))
                            i += L
                            break
                    else:
                        i += 1
        words = [w for w in q.split() if not has_cjk(w)]
        i = 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                gram = " ".join(words[i : i + n])
                key = gram if gram in self.keys else base_name(gram)
                if key in self.keys and key not in EN_STOP:
                    add(self._resolve(key, gram))
                    i += n
                    break
            else:
                w = words[i]
                if len(w) >= 4 and w not in EN_STOP and not w.isdigit():
                    unlinked.append(w)
                i += 1
        if not any(lk.type == "Drug" for lk in links):
            rest = ZH_QUESTION_WORDS.sub(" ", question)
            rest_zh = [r for r in rest.split() if has_cjk(r) and len(r) >= 2]
            unlinked.extend(rest_zh)
        suggestions: list[str] = []
        if unlinked and not links:
            for w in unlinked[:3]:
                if not has_cjk(w):
                    suggestions += difflib.get_close_matches(w, self._en_vocab, n=2, cutoff=0.85)
        return LinkResult(links, unlinked, suggestions)

    def prefix_candidates(self, word: str, limit: int = 5) -> list[str]:
        """Drug names that start with an unlinked word ('insulin' → insulin glargine, insulin lispro, ...)."""
        w = norm_name(word)
        if len(w) < 4:
            return []
        out = sorted(
            {
                self.display.get(("Drug", eid), eid)
                for k, ids in self.keys.items()
                if k.startswith(w + " ")
                for typ, eid in ids
                if typ == "Drug"
            },
            key=len,
        )
        return out[:limit]

    def link_name(self, name: str) -> list[Link]:
        """Link one drug name given on its own (the /v1/interactions endpoint): exact key, then base name."""
        n = norm_name(name)
        for key in (n, base_name(name)):
            if key in self.keys:
                return [lk for lk in self._resolve(key, name) if lk.type == "Drug"]
        res = self.link(name)
        return res.drugs


def load_synonyms(path: Path | None = None) -> list[list[str]]:
    p = path or DATA / "en_drug_synonyms.tsv"
    rows = [line.rstrip("\n").split("\t") for line in p.read_text(encoding="utf-8").splitlines()]
    return [[x.strip() for x in r if x.strip()] for r in rows if r and r[0] and not r[0].startswith("#")]


def load_zh_en(path: Path | None = None) -> dict[str, str]:
    p = path or DATA / "zh_en_drug_names.tsv"
    with p.open(encoding="utf-8") as f:
        return {r["zh"]: r["en"] for r in csv.DictReader(f, delimiter="\t")}
