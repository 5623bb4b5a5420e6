"""Build the paraphrase-diverse evaluation sets from phrasing files and the real KB sources.

    python eval/build_paraphrase.py   # writes eval/paraphrase/{dev,heldout}.jsonl and qizhen_{dev,heldout}.jsonl

Two parts, built the same way from different inputs, so that tuning on one says nothing about the other:
- dev:      phrasings_dev.json (written by the developer, used while tuning) over one random half of the drugs;
- heldout:  phrasings_heldout.json (written separately and not read while tuning) over the other half.

Each phrasing is filled with a drug chosen at random (seeded) from the KB labels that hold the section the question
asks about, under a name variant: the generic name as the label spells it (random case), a brand name, a
misspelling (one edit: transposition, deletion, doubling, keyboard slip or vowel swap, never another real name), or
the Chinese generic name (bundled zh→en table) for Chinese questions. Gold: the label ids of that drug that hold the
section. Questions about populations the sample's labels have no section for (pregnancy, lactation, children,
elderly, overdose, storage, pharmacology) are gold where a passage of the drug's label matches the population
pattern. Multi-drug questions carry every pair's DDInter level (null = no record). The QiZhen-style files ask for
the indications of Chinese-KG drugs and Chinese inserts; gold = the KG's diseases for the drug or the phrases of the
insert's 【功能主治】.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb_loaders.cmedkg import load_cmedkg  # noqa: E402
from kb_loaders.cn_inserts import load_cn_inserts  # noqa: E402
from kb_loaders.ddinter import load_ddinter  # noqa: E402
from kb_loaders.model import Label  # noqa: E402
from kb_loaders.names import base_name, norm_name  # noqa: E402
from kb_loaders.openfda import load_openfda  # noqa: E402
from rag.retrieval.linking import load_synonyms, load_zh_en  # noqa: E402

OUT = ROOT / "eval" / "paraphrase"
# intent → the canonical section that answers it (None: a population passage, see POPULATION)
SECTION_OF = {
    "indications": "indications", "dosage": "dosage", "contraindications": "contraindications",
    "warnings": "warnings", "boxed_warning": "boxed_warning", "adverse_reactions": "adverse_reactions",
    "interactions_single": "interactions", "ingredients": "ingredients",
    "pregnancy": None, "lactation": None, "pediatric": None, "geriatric": None, "overdosage": None,
    "storage": None, "pharmacology": None,
}
POPULATION = {  # what a passage must mention to answer a population question when the label has no such section
    "pregnancy": r"pregnan|fetal|fetus", "lactation": r"breast|lactat|nursing|human milk",
    "pediatric": r"pediatric|paediatric|children|child\b", "geriatric": r"geriatric|elderly|older (adult|patient)",
    "overdosage": r"overdos", "storage": r"\bstore[ds]?\b|storage|refrigerat|°[CF]",
    "pharmacology": r"mechanism|half-life|metaboli[sz]",
    "renal": r"renal|kidney|creatinine clearance|dialysis", "hepatic": r"hepatic|liver|cirrhosis",
    "child": r"pediatric|paediatric|children|child\b", "elderly": r"geriatric|elderly|older (adult|patient)",
}
CONTEXT_POP = {"renal": "renal", "hepatic": "hepatic", "pregnancy": "pregnancy", "lactation": "lactation",
               "child": "child", "elderly": "elderly"}
ZH_INSERT_INTENTS = ("indications", "dosage", "contraindications", "adverse_reactions", "warnings")
KEYBOARD = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", "wqeryuoipsadgfhkjlxzvcnbmn", strict=True)}


def insert_name(lab: Label) -> str:
    """A Chinese insert's product name as people write it (the manufacturer's bracketed brand dropped); several
    inserts (manufacturers) can share it, and any of them answers a question about it."""
    return re.sub(r"[（(].*?[)）]", "", lab.title).strip()


def qid(*parts: Any) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


class Drug:
    def __init__(self, did: str, generic: str) -> None:
        self.id = did
        self.generic = generic
        self.brands: set[str] = set()
        self.labels: list[Label] = []

    def label_ids(self, section: str | None, pattern: str | None = None) -> list[str]:
        out = []
        for lab in self.labels:
            if section and any(s.key == section for s in lab.sections):
                out.append(lab.id)
            elif pattern and any(re.search(pattern, s.text, re.I) for s in lab.sections):
                out.append(lab.id)
        return out


def drug_pool(labels: list[Label]) -> dict[str, Drug]:
    pool: dict[str, Drug] = {}
    for lab in labels:
        names = lab.generic_names or lab.substance_names
        if not names or len(names[0]) > 40 or "," in names[0]:
            continue  # combination products with long names are asked about less plainly; keep the set clean
        did = base_name(names[0])
        if len(did) < 4:
            continue
        d = pool.setdefault(did, Drug(did, names[0]))
        d.labels.append(lab)
        d.brands.update(b for b in lab.brand_names if norm_name(b) != norm_name(names[0]) and len(b) <= 30)
    return pool


def misspell(name: str, rng: random.Random, real: set[str]) -> str | None:
    w = name.lower()
    if len(w) < 6:
        return None
    for _ in range(30):
        i = rng.randrange(1, len(w) - 2)
        op = rng.choice(("swap", "drop", "double", "slip", "vowel"))
        if op == "swap":
            s = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        elif op == "drop":
            s = w[:i] + w[i + 1:]
        elif op == "double":
            s = w[:i] + w[i] + w[i:]
        elif op == "slip" and w[i] in KEYBOARD:
            s = w[:i] + KEYBOARD[w[i]] + w[i + 1:]
        elif op == "vowel" and w[i] in "aeiou":
            s = w[:i] + rng.choice([v for v in "aeiou" if v != w[i]]) + w[i + 1:]
        else:
            continue
        if s != w and norm_name(s) not in real and base_name(s) not in real:
            return s
    return None


def case_variant(name: str, rng: random.Random) -> str:
    r = rng.random()
    return name.lower() if r < 0.5 else name.title() if r < 0.8 else name.upper() if r < 0.9 else name


class Builder:
    def __init__(self, data: Path, seed: int) -> None:
        fda = load_openfda(data / "openfda").labels
        self.pool = drug_pool(fda)
        self.real = {norm_name(n) for lab in fda for n in lab.all_names()} | set(self.pool)
        for group in load_synonyms():
            self.real.update(norm_name(n) for n in group)
        self.zh_of: dict[str, list[str]] = defaultdict(list)
        for zh, en in load_zh_en().items():
            if base_name(en) in self.pool:
                self.zh_of[base_name(en)].append(zh)
        self.inserts = [lab for lab in load_cn_inserts(data / "zh_inserts").labels if lab.title]
        dd = load_ddinter(sorted((data / "ddinter").glob("*.csv")))
        self.level: dict[frozenset[str], str] = {}
        for e in dd.edges:
            self.level[frozenset((e.src, e.dst))] = str(e.props.get("level"))
        self.dd_ids = {n.id for n in dd.nodes}
        self.kg = load_cmedkg(data / "cmedkg")
        ids = sorted(self.pool)
        random.Random(seed).shuffle(ids)
        half = len(ids) // 2
        self.split_ids = {"dev": ids[:half], "heldout": ids[half:]}
        ins = list(range(len(self.inserts)))
        random.Random(seed + 1).shuffle(ins)
        self.split_inserts = {"dev": ins[: len(ins) // 2], "heldout": ins[len(ins) // 2:]}

    # -- names ---------------------------------------------------------------------------------------------------
    def name_for(self, d: Drug, lang: str, rng: random.Random) -> tuple[str, list[str]]:
        r = rng.random()
        if lang == "zh" and self.zh_of.get(d.id) and r < 0.5:
            return rng.choice(self.zh_of[d.id]), ["zh_name"]
        if r < 0.62:  # the label's spelling, or the plain base name people type ("oseltamivir")
            return case_variant(d.generic if rng.random() < 0.5 else d.id, rng), []
        if r < 0.8 and d.brands:
            b = rng.choice(sorted(d.brands))
            return (b.lower() if rng.random() < 0.5 else b), ["brand"]
        m = misspell(d.generic, rng, self.real)
        if m:
            return m, ["misspelled"]
        return case_variant(d.generic, rng), []

    def pick(self, part: str, rng: random.Random, section: str | None, pattern: str | None,
             need_dd: bool = False) -> tuple[Drug, list[str]] | None:
        ids = self.split_ids[part]
        for _ in range(200):
            d = self.pool[rng.choice(ids)]
            if need_dd and d.id not in self.dd_ids:
                continue
            gold = d.label_ids(section, pattern)
            if gold:
                return d, gold
        return None

    # -- question kinds --------------------------------------------------------------------------------------------
    def label_questions(self, part: str, phr: dict, rng: random.Random, reps: int) -> list[dict]:
        out = []
        for intent, by_lang in phr["label"].items():
            section = SECTION_OF[intent]
            pattern = POPULATION.get(intent) if section is None else None
            for lang, qs in by_lang.items():
                for q in qs:
                    for rep in range(reps):
                        if lang == "zh" and intent in ZH_INSERT_INTENTS and rep == reps - 1:
                            row = self.insert_question(part, q, intent, rng)
                            if row:
                                out.append(row)
                                continue
                        got = self.pick(part, rng, section, pattern)
                        if got is None:
                            continue
                        d, gold = got
                        name, tags = self.name_for(d, lang, rng)
                        exp: dict[str, Any] = {"set_ids": gold, "drug": d.generic, "intent": intent}
                        if section:
                            exp["section"] = section
                        else:
                            exp["pattern"] = pattern
                        out.append({"id": qid(part, intent, lang, q, rep), "question": q.replace("{drug}", name),
                                    "lang": lang, "expected": exp, "tags": tags})
        return out

    def insert_question(self, part: str, q: str, intent: str, rng: random.Random) -> dict | None:
        section = SECTION_OF[intent]
        for _ in range(50):
            lab = self.inserts[rng.choice(self.split_inserts[part])]
            if any(s.key == section for s in lab.sections):
                name = insert_name(lab)
                same = [x.id for x in self.inserts
                        if insert_name(x) == name and any(s.key == section for s in x.sections)]
                return {"id": qid(part, intent, "zh", q, lab.id), "question": q.replace("{drug}", name),
                        "lang": "zh", "tags": ["cn_insert"],
                        "expected": {"set_ids": same, "drug": name, "intent": intent, "section": section}}
        return None

    def context_questions(self, part: str, phr: dict, rng: random.Random) -> list[dict]:
        out = []
        for pop, by_lang in phr["context"].items():
            pattern = POPULATION[CONTEXT_POP[pop]]
            for lang, items in by_lang.items():
                for it in items:
                    section = SECTION_OF[it["asks"]]
                    for _ in range(50):
                        got = self.pick(part, rng, section, None)
                        if got is None:
                            break
                        d, gold = got
                        gold = [g for g in gold if g in d.label_ids(None, pattern)]
                        if gold:
                            name, tags = self.name_for(d, lang, rng)
                            out.append({"id": qid(part, "context", pop, lang, it["q"]), "lang": lang,
                                        "question": it["q"].replace("{drug}", name), "tags": ["patient_context", *tags],
                                        "expected": {"set_ids": gold, "drug": d.generic, "intent": it["asks"],
                                                     "section": section, "population": pop, "pattern": pattern}})
                            break
        return out

    def multi_questions(self, part: str, phr: dict, rng: random.Random, reps: int = 2) -> list[dict]:
        out = []
        cands = [i for i in self.split_ids[part] if i in self.dd_ids]
        for lang, qs in phr["multi_drug"].items():
            for q in qs:
                n = 3 if "{c}" in q else 2
                for rep in range(reps):
                    for _ in range(200):
                        ids = rng.sample(cands, n)
                        pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
                        recorded = [p for p in pairs if frozenset(p) in self.level]
                        if recorded or rng.random() < 0.15:
                            break
                    names = []
                    for did in ids:
                        d = self.pool[did]
                        names.append(rng.choice(self.zh_of[did]) if lang == "zh" and self.zh_of.get(did)
                                     and rng.random() < 0.4 else case_variant(d.generic, rng))
                    text = q
                    for slot, nm in zip("abc", names, strict=False):
                        text = text.replace("{" + slot + "}", nm)
                    exp_pairs = [{"drugs": [self.pool[a].generic, self.pool[b].generic],
                                  "level": self.level.get(frozenset((a, b)))} for a, b in pairs]
                    out.append({"id": qid(part, "multi", lang, q, rep), "question": text, "lang": lang,
                                "tags": ["multi_drug"], "expected": {"intent": "interaction", "pairs": exp_pairs}})
        return out

    def policy_questions(self, part: str, phr: dict, rng: random.Random) -> list[dict]:
        out = []
        for lang, qs in phr["prescription_request"].items():
            for q in qs:
                text = q
                if "{drug}" in q:
                    d = self.pool[rng.choice(self.split_ids[part])]
                    text = q.replace("{drug}", self.name_for(d, lang, rng)[0])
                out.append({"id": qid(part, "rx", lang, q), "question": text, "lang": lang, "tags": ["prescription"],
                            "expected": {"intent": "prescription", "status": "refused"}})
        for lang, items in phr["prescribed_question"].items():
            for it in items:
                section = SECTION_OF[it["asks"]]
                got = self.pick(part, rng, section, None)
                if got is None:
                    continue
                d, gold = got
                name, tags = self.name_for(d, lang, rng)
                out.append({"id": qid(part, "prescribed", lang, it["q"]), "question": it["q"].replace("{drug}", name),
                            "lang": lang, "tags": ["prescribed", *tags],
                            "expected": {"set_ids": gold, "drug": d.generic, "intent": it["asks"], "section": section,
                                         "status": "answered"}})
        return out + self.unknown_questions(part, phr, rng)

    def unknown_questions(self, part: str, phr: dict, rng: random.Random) -> list[dict]:
        """Invented drug names, alone or beside a real drug: never answered as another drug."""
        out = []
        fakes = list(phr["invented_names"])
        for kind in ("unknown_alone", "unknown_beside_real"):
            for lang, qs in phr[kind].items():
                for q in qs:
                    fake = rng.choice(fakes)
                    if norm_name(fake) in self.real:
                        continue
                    text = q.replace("{fake}", fake if rng.random() < 0.6 else fake.lower())
                    exp: dict[str, Any] = {"answerable": False, "unknown": fake}
                    if "{drug}" in q:
                        d = self.pool[rng.choice(self.split_ids[part])]
                        text = text.replace("{drug}", case_variant(d.generic, rng))
                        exp["real_drug"] = d.generic
                    out.append({"id": qid(part, kind, lang, q), "question": text, "lang": lang,
                                "tags": ["unknown_drug"], "expected": exp})
        return out

    def qizhen(self, part: str, phr: dict, rng: random.Random, n_kg: int = 120) -> list[dict]:
        """Drug → indications in Chinese, from the Chinese KG (diseases that recommend the drug) and inserts."""
        qs = phr["label"]["indications"]["zh"]
        by_drug: dict[str, set[str]] = defaultdict(set)
        names = {n.id: n.name for n in self.kg.nodes if n.type == "Drug"}
        for e in self.kg.edges:
            if e.type in ("RECOMMAND_DRUG", "COMMON_DRUG") and len(e.src) >= 2:
                by_drug[e.dst].add(e.src)
        kg_ids = sorted(d for d, ds in by_drug.items() if 1 <= len(ds) <= 12)
        random.Random(7).shuffle(kg_ids)
        half = len(kg_ids) // 2
        chosen = (kg_ids[:half] if part == "dev" else kg_ids[half:])[:n_kg]
        out = []
        for did in chosen:
            q = rng.choice(qs)
            name = names.get(did, did)
            out.append({"id": qid(part, "qizhen", did), "question": q.replace("{drug}", name), "lang": "zh",
                        "tags": ["qizhen", "cmedkg"], "expected": {"indications": sorted(by_drug[did])}})
        for i in self.split_inserts[part][:60]:
            lab = self.inserts[i]
            sec = next((s for s in lab.sections if s.key == "indications" and s.name == "功能主治"), None)
            if sec is None:
                continue
            phrases = [p for p in re.split(r"[，。；、,;：:\s]+", sec.text) if 2 <= len(p) <= 12]
            if not phrases:
                continue
            name = insert_name(lab)
            out.append({"id": qid(part, "qizhen", lab.id), "question": rng.choice(qs).replace("{drug}", name),
                        "lang": "zh", "tags": ["qizhen", "cn_insert"], "expected": {"indications": phrases[:8]}})
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--probe", help="build only eval/paraphrase/NAME.jsonl from phrasings_NAME.json (label, context, "
                    "multi-drug and invented-name questions, whichever it has, over the dev half of the drugs, tagged "
                    "tuning / held_aside by a hash of the question)")
    a = ap.parse_args()
    b = Builder(a.data, a.seed)
    if a.probe:
        phr = json.loads((OUT / f"phrasings_{a.probe}.json").read_text(encoding="utf-8"))
        rng = random.Random(f"{a.seed}-{a.probe}")
        rows = (b.label_questions("dev", phr, rng, reps=2) if "label" in phr else []) \
            + (b.context_questions("dev", phr, rng) if "context" in phr else []) \
            + (b.multi_questions("dev", phr, rng) if "multi_drug" in phr else []) \
            + (b.unknown_questions("dev", phr, rng) if "invented_names" in phr else [])
        with (OUT / f"{a.probe}.jsonl").open("w", encoding="utf-8") as f:
            for r in rows:
                h = int(hashlib.sha1(r["question"].encode()).hexdigest()[:8], 16)
                half = "held_aside" if h % 2 == 0 else "tuning"
                r["tags"] = [*r["tags"], half]
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{a.probe}: {len(rows)} questions")
        return
    for part in ("dev", "heldout"):
        src = OUT / f"phrasings_{part}.json"
        if not src.exists():
            print(f"skip {part}: {src} missing")
            continue
        phr = json.loads(src.read_text(encoding="utf-8"))
        rng = random.Random(f"{a.seed}-{part}")
        rows = (b.label_questions(part, phr, rng, reps=2) + b.context_questions(part, phr, rng)
                + b.multi_questions(part, phr, rng) + b.policy_questions(part, phr, rng))
        with (OUT / f"{part}.jsonl").open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        qz = b.qizhen(part, phr, rng)
        with (OUT / f"qizhen_{part}.jsonl").open("w", encoding="utf-8") as f:
            for r in qz:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{part}: {len(rows)} questions, {len(qz)} QiZhen-style")


if __name__ == "__main__":
    main()
