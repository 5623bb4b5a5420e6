"""The default answer builder (no LLM): picks the sentences of the retrieved sections that answer the question,
groups them into facts and cites each as a verbatim span of the stored section (or a graph edge)."""

from __future__ import annotations

import re
from collections.abc import Callable

from kb_loaders.names import base_name
from kb_loaders.sections import SECTION_TITLES
from rag.answer.cites import Citations
from rag.answer.quotes import best_spans
from rag.answer.schema import Answer, AnswerMetadata, Fact, Interaction, Severity
from rag.answer.text import disclaimer, t
from rag.core.text import tokens_for_overlap
from rag.core.types import Evidence, Source
from rag.retrieval.retriever import Retrieval

SEVERITY_KEYS: dict[str, Severity] = {"major": "major", "moderate": "moderate", "minor": "minor"}


def sec_title(key: str | None, lang: str) -> str:
    return SECTION_TITLES.get(key or "", {}).get(lang, key or "")




def _clean(s: str, limit: int = 320) -> str:
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1].rsplit(" ", 1)[0] + "…"


def build(ret: Retrieval, suggest: Callable[[str], list[str]] | None = None,
          prefix_candidates: Callable[[str], list[str]] | None = None) -> Answer:
    ev = ret.evidence
    lang = ev.language
    cites = Citations()
    facts: list[Fact] = []
    interactions: list[Interaction] = []
    follow: list[str] = []
    meta = AnswerMetadata(generator="extractive", linked=ev.linked, routed_sections=ev.sections,
                          retrieved_labels=ev.retrieved_labels)

    def done(status: str, answer: str) -> Answer:
        return Answer(question=ev.question, language=lang, status=status, answer=answer, facts=facts,  # type: ignore[arg-type]
                      interactions=interactions, citations=cites.items, follow_up_questions=follow[:3],
                      disclaimer=disclaimer(lang), metadata=meta)

    if ev.intent == "prescription":
        follow.append(
            t(
                lang,
                "Would you like the label's dosage information for a specific drug?",
                "需要查询某个药品说明书中的用法用量吗？",
            )
        )
        return done(
            "refused",
            t(
                lang,
                "I can't write prescriptions or personal treatment plans. A licensed doctor must prescribe medicines; "
                "I can show what drug labels say about a drug's uses, doses and risks.",
                "根据相关规定，AI 不能开具处方或制定个人用药方案，处方须由执业医师开具。"
                "我可以提供药品说明书中关于适应症、用法用量和风险的信息。",
            ),
        )

    links = ret.links
    if not links.links:
        options = [c for w in links.unlinked[:2] for c in (prefix_candidates(w) if prefix_candidates else [])]
        if options:  # "insulin": several products start with it; ask which one
            follow.extend(t(lang, f"Do you mean {c}?", f"您是指 {c} 吗？") for c in options[:3])
            return done(
                "needs_clarification",
                t(
                    lang,
                    f'Several drugs match "{links.unlinked[0]}": {", ".join(options)}. Which one do you mean?',
                    f"有多种药品与“{links.unlinked[0]}”匹配：{'、'.join(options)}。请问您指的是哪一种？",
                ),
            )
        if links.unlinked:
            names = ", ".join(links.unlinked[:3])
            cands = list(dict.fromkeys(links.suggestions + (suggest(ev.question) if suggest else [])))[:3]
            follow.extend(t(lang, f"Did you mean {c}?", f"您是指 {c} 吗？") for c in cands)
            return done(
                "insufficient_evidence",
                t(
                    lang,
                    f'I found no drug or disease named "{names}" in the knowledge base, '
                    "so I can't answer from its labels. "
                    "Check the spelling or ask a pharmacist.",
                    f"知识库中没有找到“{names}”对应的药品或疾病，无法依据说明书回答。请检查名称或咨询药师。",
                ),
            )
        follow.append(
            t(
                lang,
                "Which drug (generic or brand name) are you asking about?",
                "请问您想咨询哪一种药品（通用名或商品名）？",
            )
        )
        return done(
            "needs_clarification",
            t(
                lang,
                "Which drug do you mean? Please name the medicine so I can look up its label.",
                "请问您问的是哪种药品？请告诉我药品名称，以便查询说明书。",
            ),
        )

    label_src = [s for s in ev.sources if s.kind == "label"]
    graph_src = [s for s in ev.sources if s.kind == "graph"]
    parts: list[str] = []

    # --- interactions: the graph first -----------------------------------------------------------------------
    if ev.intent == "interaction":
        for s in graph_src:
            e = s.edge
            if e is None or e["type"] != "INTERACTS_WITH":
                continue
            level = str((e.get("props") or {}).get("level", "Unknown"))
            cid = cites.add(s, 0, len(s.section_text))
            sev: Severity = SEVERITY_KEYS.get(level.lower(), "unknown")
            text = t(
                lang,
                f"DDInter records a {level} interaction between {e['src_name']} and {e['dst_name']}.",
                f"DDInter 记录 {e['src_name']} 与 {e['dst_name']} 之间存在{_zh_level(level)}相互作用。",
            )
            interactions.append(
                Interaction(drugs=[e["src_name"], e["dst_name"]], severity=sev, text=text, citations=[cid])
            )
        for da, db, lv in ret.pairs_with_edge:
            parts.append(
                t(
                    lang,
                    f"{da} + {db}: DDInter records a {lv} interaction. Ask your doctor or pharmacist before "
                    f"combining them.",
                    f"{da} 与 {db}：DDInter 记录有{_zh_level(lv)}相互作用，联合使用前请咨询医生或药师。",
                )
            )

        def label_mentions(a: str, b: str) -> bool:
            """A label of one drug of the pair names the other one."""
            for s in label_src:
                low = s.text.lower()
                if (b.lower() in low and base_name(b) not in s.drug_ids) or (
                    a.lower() in low and base_name(a) not in s.drug_ids
                ):
                    return True
            return False

        for da, db in ret.pairs_without_edge:
            if label_mentions(da, db):  # the graph is silent but a label names the other drug: the label speaks
                parts.append(
                    t(
                        lang,
                        f"{da} + {db}: DDInter has no record of this pair, but the label text below mentions it; "
                        f"read it "
                        "and ask a pharmacist before combining them. No record is never proof of safety.",
                        f"{da} 与 {db}：DDInter 中没有这对药物的记录，但以下说明书原文提及了它，"
                        f"请仔细阅读并在联合使用前咨询药师。没有记录不代表安全。",
                    )
                )
                continue
            parts.append(
                t(
                    lang,
                    f"{da} + {db}: no interaction is recorded in the knowledge base. That does not mean the "
                    f"combination is "
                    "safe; ask a pharmacist to check it.",
                    f"{da} 与 {db}：知识库中未记录相互作用，但这并不代表联合使用是安全的，请咨询药师。",
                )
            )
        if len(ret.pairs_with_edge) + len(ret.pairs_without_edge) == 0 and interactions:
            parts.append(
                t(
                    lang,
                    f"The knowledge graph lists {len(interactions)} interactions (most severe first).",
                    f"知识图谱列出 {len(interactions)} 条相互作用（按严重程度排序）。",
                )
            )
        for s in label_src[:4]:
            # the passage that names the other drug: search within the retrieved chunk, cite it in the section
            if len(ret.pairs_with_edge) + len(ret.pairs_without_edge) == 0:
                query = ev.question  # "which drugs interact with X?" / "X and grapefruit?": the question's own words
            else:  # a pair: the sentence that names the OTHER drug of the pair (this label names its own everywhere)
                query = " ".join(
                    n.name for n in ev.linked if n.id not in s.drug_ids and base_name(n.name) not in s.drug_ids
                )
            for a, b in best_spans(s.text, query, set(), lead=False, n=1, max_chars=400):
                cid = cites.add(s, s.offset + a, s.offset + b)
                if all(cid not in f.citations for f in facts):
                    facts.append(Fact(type=s.section or "interactions", text=_clean(s.text[a:b]), citations=[cid]))
        if interactions or facts or parts:
            follow.append(
                t(
                    lang,
                    "Would you like the label's warnings for either drug?",
                    "需要查看其中某个药品说明书的注意事项吗？",
                )
            )
            return done(
                "answered", " ".join(parts) or t(lang, "See the label passages below.", "请参阅以下说明书原文。")
            )

    # --- label passages --------------------------------------------------------------------------------------
    if label_src:
        top = label_src[0]
        exclude = {tok for lk in ev.linked for tok in tokens_for_overlap(lk.matched + " " + lk.name)}
        wanted = ev.sections[0] if ev.sections else None
        same = [s for s in label_src if s.doc_id == top.doc_id and s.section == top.section]
        lead = top.section in (
            "indications",
            "contraindications",
            "boxed_warning",
            "dosage",
            "pregnancy",
            "lactation",
            "pediatric",
            "geriatric",
            "overdosage",
            "storage",
            "ingredients",
        )
        texts_done: set[int] = set()
        for s in same:
            key = id(s.section_text)
            if key in texts_done:
                continue
            texts_done.add(key)
            for a, b in best_spans(s.section_text, ev.question, exclude, lead=lead, n=2 if not facts else 1):
                cid = cites.add(s, a, b)
                facts.append(Fact(type=s.section or "other", text=_clean(s.section_text[a:b], 600), citations=[cid]))
            if len(facts) >= 3:
                break
        # one more passage from the next routed section of the same label, when the question routes to several
        extra = next((s for s in label_src if s.doc_id == top.doc_id and s.section != top.section), None)
        if extra is not None and len(facts) < 3:
            for a, b in best_spans(extra.section_text, ev.question, exclude, lead=False, n=1, max_chars=400):
                cid = cites.add(extra, a, b)
                facts.append(
                    Fact(type=extra.section or "other", text=_clean(extra.section_text[a:b], 400), citations=[cid])
                )
        sec = sec_title(top.section, lang)
        note = ""
        if wanted and top.section != wanted:
            note = t(
                lang,
                f" This label has no {sec_title(wanted, 'en')} section; the closest text is from {sec}.",
                f"该说明书没有【{sec_title(wanted, 'zh')}】部分，以下为【{sec}】中的相关内容。",
            )
        first = facts[0].text if facts else ""
        body = t(
            lang,
            f'According to the label "{top.title}" ({sec}): {_clean(first, 300)}',
            f"根据“{top.title}”说明书【{sec}】：{_clean(first, 300)}",
        )
        if lang == "zh" and top.language == "en":
            body += "（原文为英文）"
        ask_first = clarifying_question(ev)
        if ask_first:  # BianQue-style: the label makes this decisive, so ask before the user acts on a general dose
            follow.insert(0, ask_first)
        if ev.intent in ("dosage", "pediatric", "geriatric", "pregnancy", "lactation"):
            body += t(
                lang,
                " Doses in a label are general; your own dose depends on your condition, so confirm it with your "
                "doctor or pharmacist.",
                " 说明书剂量为一般推荐，个人用量需结合病情由医生或药师确定。",
            )
        for k in ("contraindications", "adverse_reactions", "interactions", "dosage", "indications"):
            if k not in ev.sections and k != top.section and len(follow) < 2:
                name = next((lk.name for lk in ev.linked if lk.type == "Drug"), "")
                follow.append(
                    t(
                        lang,
                        f"What are the {sec_title(k, 'en').lower()} of {name}?",
                        f"{name}的{sec_title(k, 'zh')}是什么？",
                    )
                )
        graph_facts(graph_src, cites, facts, lang)
        return done("answered", body + note)

    # --- graph only (a drug with no label, or a disease) -----------------------------------------------------
    if graph_src:
        graph_facts(graph_src, cites, facts, lang)
        if interactions or facts:
            who = ", ".join(dict.fromkeys(lk.name for lk in ev.linked[:3]))
            label_needed = ev.intent not in ("indications", "general", "disease_drugs", "interaction")
            if label_needed:
                return done(
                    "insufficient_evidence",
                    t(
                        lang,
                        f"The knowledge base has no label for {who}, so I can't answer this from a label. The "
                        f"knowledge graph links it as shown below; ask a pharmacist for dosing and safety.",
                        f"知识库中没有{who}的说明书，无法依据说明书回答该问题。知识图谱中的相关信息如下，剂量与安全性问题请咨询药师。",
                    ),
                )
            return done(
                "answered",
                t(
                    lang,
                    f"From the knowledge graph (no label text in the knowledge base for {who}):",
                    f"以下信息来自知识图谱（知识库中没有{who}的说明书原文）：",
                ),
            )

    who = ", ".join(dict.fromkeys(lk.name.lower() for lk in ev.linked[:3]))
    follow.append(t(lang, f"Would you like other sections of the {who} label?", f"需要查看{who}说明书的其他部分吗？"))
    return done(
        "insufficient_evidence",
        t(
            lang,
            f"The knowledge base has no label text about this for {who}. Please ask a doctor or pharmacist.",
            f"知识库中没有关于{who}这一问题的说明书内容，请咨询医生或药师。",
        ),
    )


_CONTEXT = re.compile(
    r"\b(child|children|kid|infant|baby|adult|elderly|older|year|years|aged?|pregnan\w*|breast\w*|nursing|kidney|renal|"
    r"liver|hepatic|dialysis|weigh\w*|kg|also tak\w*|other (drug|medicine)s?)\b|岁|儿童|小儿|婴|成人|老人|老年|孕|"
    r"哺乳|肾|肝|体重|同时(服|吃|用)|其他药",
    re.I,
)


def clarifying_question(ev: Evidence) -> str | None:
    """For dose and safety questions that say nothing of who takes the drug, the one question worth asking."""
    if ev.intent not in ("dosage", "warnings", "contraindications", "adverse_reactions"):
        return None
    if _CONTEXT.search(ev.question) or _CONTEXT.search(ev.history_text):
        return None
    return t(
        ev.language,
        "Who is it for: an adult or a child (what age)? Any pregnancy or breastfeeding, kidney or liver problems, "
        "or other medicines? The label's advice can differ for these.",
        "请问是谁用药：成人还是儿童（几岁）？是否怀孕或哺乳、有无肝肾功能问题、是否同时服用其他药物？说明书对这些情况的建议可能不同。",
    )


def graph_facts(graph_src: list[Source], cites: Citations, facts: list[Fact], lang: str) -> None:
    for s in graph_src:
        e = s.edge
        if e is None or e["type"] == "INTERACTS_WITH" or len(str(e.get("dst_name", ""))) < 2:
            continue  # interactions are listed separately; one-character names are data noise (e.g. "Ⅰ")
        cid = cites.add(s, 0, len(s.section_text))
        if e.get("type") in ("RECOMMAND_DRUG", "COMMON_DRUG"):
            kind = {"RECOMMAND_DRUG": ("recommended", "推荐用药"), "COMMON_DRUG": ("commonly used", "常用药")}[
                e["type"]
            ]
            text = t(
                lang,
                f"{e['dst_name']} is listed as a {kind[0]} drug for {e['src_name']}.",
                f"{e['dst_name']} 是 {e['src_name']} 的{kind[1]}。",
            )
        else:
            text = s.text
        facts.append(Fact(type="graph", text=text, citations=[cid]))


def _zh_level(level: str) -> str:
    return {"major": "严重", "moderate": "中度", "minor": "轻微", "unknown": "程度未知的"}.get(level.lower(), "")
