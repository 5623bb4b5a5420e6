"""The extractive answer to an interaction question: every pair of the drugs asked about, from the graph first.

A recorded pair carries the DDInter edge's severity (never a model's or a label's wording) and the label sentences
that name the other drug; a pair without a record is stated as "no interaction recorded in the knowledge base",
which is never called safe, with the label sentence when a label names the other drug anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from kb_loaders.names import base_name
from rag.answer.cites import Draft, clean
from rag.answer.quotes import best_spans
from rag.answer.schema import Answer, Interaction, InteractionCheck, Severity
from rag.answer.text import t, zh_level
from rag.core.types import Source
from rag.retrieval.interactions import PairRecord
from rag.retrieval.retriever import Retrieval

SEVERITY_KEYS: dict[str, Severity] = {"major": "major", "moderate": "moderate", "minor": "minor"}


def severity(level: str | None) -> Severity:
    return SEVERITY_KEYS.get((level or "").lower(), "unknown")


def edge_interaction(d: Draft, s: Source) -> str:
    """Cite one INTERACTS_WITH edge and list it as an interaction; returns the citation id."""
    e = s.edge
    assert e is not None
    level = str((e.get("props") or {}).get("level", "Unknown"))
    cid = d.cites.whole(s)
    if all(cid not in it.citations for it in d.interactions):
        text = t(d.ev.language, f"DDInter records a {level} interaction between {e['src_name']} and {e['dst_name']}.",
                 f"DDInter 记录 {e['src_name']} 与 {e['dst_name']} 之间存在{zh_level(level)}相互作用。")
        d.interactions.append(Interaction(drugs=[e["src_name"], e["dst_name"]], severity=severity(level), text=text,
                                          citations=[cid]))
    return cid


def label_sentence(d: Draft, s: Source, names: list[str]) -> str | None:
    """Cite the sentence of a label passage that names one of `names` (the other drug of the pair)."""
    for a, b in best_spans(s.text, " ".join(names), set(), lead=False, n=1, max_chars=400):
        if any(n.lower() in s.text[a:b].lower() for n in names):
            return d.fact(s, s.offset + a, s.offset + b, clean(s.text[a:b], 320), s.section or "interactions")
    return None


def pair_line(lang: str, a: str, b: str, level: str | None, label_names_it: bool) -> str:
    """The answer's line for one pair: its recorded level, or no record (never "safe")."""
    if level is not None:
        what = "an interaction of unstated severity" if level.lower() == "unknown" else f"a {level} interaction"
        return t(lang, f"{a} + {b}: DDInter records {what}. Ask your doctor or pharmacist before combining them.",
                 f"{a} 与 {b}：DDInter 记录有{zh_level(level)}相互作用，联合使用前请咨询医生或药师。")
    if label_names_it:
        return t(lang, f"{a} + {b}: DDInter has no record of this pair, but the label text below mentions it; read it "
                       "and ask a pharmacist before combining them. No record is never proof of safety.",
                 f"{a} 与 {b}：DDInter 中没有这对药物的记录，但以下说明书原文提及了它，"
                 "请仔细阅读并在联合使用前咨询药师。"
                 "没有记录不代表安全。")
    return t(lang, f"{a} + {b}: no interaction is recorded in the knowledge base. That does not mean the combination "
                   "is safe; ask a pharmacist to check it.",
             f"{a} 与 {b}：知识库中未记录相互作用，但这并不代表联合使用是安全的，请咨询药师。")


def pair_sources(ret: Retrieval) -> set[int]:
    """The ids of the sources the pair check brought (graph edges and label sentences of every pair)."""
    return {id(s) for rec in ret.pairs for s in rec.edges + rec.label_sources}


def pair_check(d: Draft, rec: PairRecord) -> str:
    """Cite one pair's edges and label sentences, record its check, and return its line of the answer."""
    lang = d.ev.language
    a, b = rec.names
    cids = [edge_interaction(d, s) for s in rec.edges]
    label_cids: list[str] = []
    for s in rec.label_sources:
        other = [n for n, i in zip(rec.names, rec.ids, strict=True)
                 if i not in s.drug_ids and base_name(n) not in s.drug_ids]
        cid = label_sentence(d, s, other or list(rec.names))
        if cid:
            label_cids.append(cid)
    line = pair_line(lang, a, b, rec.level, bool(label_cids))
    d.checks.append(InteractionCheck(drugs=[a, b], drug_ids=list(rec.ids), recorded=rec.level is not None,
                                     severity=severity(rec.level) if rec.level is not None else None, text=line,
                                     citations=list(dict.fromkeys(cids + label_cids))))
    return line


def build_interactions(ret: Retrieval, d: Draft, populations: Callable[[], str] = str) -> Answer | None:
    """The answer for an interaction question, or None when there is nothing to say from the graph or labels.
    `populations` quotes the passages about the patient's situation the question gives and returns what the answer
    adds for it (rag.answer.extractive)."""
    ev, lang = ret.evidence, ret.evidence.language
    parts = [pair_check(d, rec) for rec in ret.pairs]
    if not ret.pairs or ret.listing:  # "which drugs interact with X?": the drug's recorded interactions, then its
        # label passages (after the pairs with what the asker already takes, when the question names that)
        paired = pair_sources(ret)
        rest = [s for s in ev.sources if id(s) not in paired]
        before = len(d.interactions)
        for s in rest:
            if s.kind == "graph" and s.edge is not None and s.edge["type"] == "INTERACTS_WITH":
                edge_interaction(d, s)
        if len(d.interactions) > before:
            n = len(d.interactions) - before
            parts.append(t(lang, f"The knowledge graph lists {n} interactions (most severe first).",
                           f"知识图谱列出 {n} 条相互作用（按严重程度排序）。"))
        for s in [s for s in rest if s.kind == "label" and s.population is None][:3]:
            for a, b in best_spans(s.text, ev.question, set(), lead=False, n=1, max_chars=400):
                d.fact(s, s.offset + a, s.offset + b, clean(s.text[a:b], 320), s.section or "interactions")
    if not (d.interactions or d.facts or parts):
        return None
    parts.append(populations())
    d.follow.append(t(lang, "Would you like the label's warnings for either drug?",
                      "需要查看其中某个药品说明书的注意事项吗？"))
    return d.finish("answered", " ".join(p for p in parts if p)
                    or t(lang, "See the label passages below.", "请参阅以下说明书原文。"))
