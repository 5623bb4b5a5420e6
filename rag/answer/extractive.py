"""The default answer builder (no model): the sentences of the retrieved passages that answer the question, each a
fact citing its verbatim span of the stored section, or a graph edge. Runs after the answer policy
(rag.answer.policy) let the question through.

- Interaction questions: every pair from the graph first (rag.answer.interactions).
- Label questions: the best passages of the top label's best section, one more from the next section, the passage
  about the patient's population when the question gives one (kidney, liver, pregnancy, …), and knowledge-graph
  facts. A Chinese question gets Chinese prose and the Chinese terms the knowledge base has for what the English
  quote says (rag.answer.zh_terms: a term table), each beside the English words it came from.
- A drug without a label: the graph's facts, and a plain statement that a label answer is not available.
"""

from __future__ import annotations

from kb_loaders.sections import SECTION_TITLES
from rag.answer.cites import Draft, clean
from rag.answer.interactions import build_interactions, pair_check, pair_sources
from rag.answer.quotes import best_spans
from rag.answer.schema import Answer
from rag.answer.text import CLARIFY_WHO, DOSE_NOTE, distinct_names, t
from rag.core.text import sentence_spans, tokens_for_overlap
from rag.core.types import Evidence, Source
from rag.retrieval.context import BY_KEY, INTENT_TOPIC, MAX_POPULATIONS, POPULATIONS, gives_context
from rag.retrieval.retriever import Retrieval

LEAD_SECTIONS = frozenset({"indications", "contraindications", "boxed_warning", "dosage", "pregnancy", "lactation",
                           "pediatric", "geriatric", "overdosage", "storage", "ingredients"})
DOSE_INTENTS = frozenset({"dosage", "pediatric", "geriatric", "pregnancy", "lactation"})
CLARIFY_INTENTS = frozenset({"dosage", "warnings", "contraindications", "adverse_reactions"})
GRAPH_KINDS = {"RECOMMAND_DRUG": ("recommended", "推荐用药"), "COMMON_DRUG": ("commonly used", "常用药")}


def sec_title(key: str | None, lang: str) -> str:
    return SECTION_TITLES.get(key or "", {}).get(lang, key or "")


def build(ret: Retrieval) -> Answer:
    ev = ret.evidence
    d = Draft(ev)
    label_src = [s for s in ev.sources if s.kind == "label"]
    if ev.intent == "interaction":
        top = next((s for s in label_src if s.population is None), None)
        ans = build_interactions(ret, d, lambda: _populations(ret, d, label_src, top)[1].strip())
        if ans is not None:
            return ans
    graph_src = [s for s in ev.sources if s.kind == "graph"]
    if label_src:
        return _label_answer(ret, d, label_src, graph_src)
    if graph_src:
        return _graph_answer(ev, d, graph_src)
    lang = ev.language
    who = _names(ev).lower()
    d.follow.append(t(lang, f"Would you like other sections of the {who} label?", f"需要查看{who}说明书的其他部分吗？"))
    return d.finish("insufficient_evidence", t(
        lang, f"The knowledge base has no label text about this for {who}. Please ask a doctor or pharmacist.",
        f"知识库中没有关于{who}这一问题的说明书内容，请咨询医生或药师。"))


def _label_answer(ret: Retrieval, d: Draft, label_src: list[Source], graph_src: list[Source]) -> Answer:
    ev, lang = ret.evidence, ret.evidence.language
    paired = pair_sources(ret)  # a question about one drug beside others the asker takes: the pairs are checked
    # after the answer (pair_check), not quoted as its passages
    label_src = [s for s in label_src if id(s) not in paired]
    graph_src = [s for s in graph_src if id(s) not in paired]
    if not label_src:
        return _graph_answer(ev, d, graph_src) if graph_src else d.finish("insufficient_evidence", t(
            lang, "The knowledge base has no label text about this. Please ask a doctor or pharmacist.",
            "知识库中没有相关的说明书内容，请咨询医生或药师。"))
    main = [s for s in label_src if s.population is None]
    top = (main or label_src)[0]
    exclude = {tok for lk in ev.linked for tok in tokens_for_overlap(lk.matched + " " + lk.name)}
    lead = top.section in LEAD_SECTIONS
    # then one passage from each of the route's next preferred sections that retrieval found for the same label
    # ("can I take X while nursing?": contraindications and warnings; a safety question: the boxed warning and the
    # contraindications), or, when it found none, from the next best passage's section
    others = [s for s in main if s.doc_id == top.doc_id and s.section != top.section]
    extras: list[Source] = []
    for sec in ev.sections:
        hit = next((s for s in others if s.section == sec), None)
        if hit is not None and len(extras) < 2:
            extras.append(hit)
    cap = 4 if extras else 3  # facts in all: a fallback passage only when the asked section gave fewer than 3
    if not extras and others:
        extras = [others[0]]
    done: set[int] = set()
    for s in [s for s in main if s.doc_id == top.doc_id and s.section == top.section]:
        if id(s.section_text) in done:
            continue
        done.add(id(s.section_text))
        for a, b in best_spans(s.section_text, ev.question, exclude, lead=lead, n=2 if not d.facts else 1):
            d.fact(s, a, b)
        if len(d.facts) >= (2 if len(extras) > 1 else 3):
            break
    for extra in extras:
        if len(d.facts) >= cap:
            break
        for a, b in best_spans(extra.section_text, ev.question, exclude, lead=False, n=1, max_chars=400):
            d.fact(extra, a, b, clean(extra.section_text[a:b], 400))
    said, silent = _populations(ret, d, label_src, top)
    _graph_facts(d, graph_src)
    wanted = ev.sections[0] if ev.sections else None
    lead_src, first = top, (d.facts[0].text if d.facts else "")
    # the label has no passage of the asked section among those retrieved (a label whose section ranked below another
    # is not said to lack it)
    missing = bool(wanted) and not any(s.doc_id == top.doc_id and s.section == wanted for s in main)
    if ev.intent == "substance":  # the sentence about alcohol (grapefruit, …) leads, whichever section holds it
        topic = next((said[k] for k in ret.substances if k in said), None)
    else:  # a topic with no section of its own: the sentence that says it leads
        topic = said.get(INTENT_TOPIC.get(ev.intent or "", "")) if missing else None
    if topic is not None:
        lead_src, first = topic
    sec = sec_title(lead_src.section, lang)
    note = ""
    if missing and lead_src.section != wanted and wanted in SECTION_TITLES:
        note = t(lang, f" This label has no {sec_title(wanted, 'en')} section; the closest text is from {sec}.",
                 f"该说明书没有【{sec_title(wanted, 'zh')}】部分，以下为【{sec}】中的相关内容。")
    body = t(lang, f'According to the label "{lead_src.title}" ({sec}): {clean(first, 300)}',
             f"根据“{lead_src.title}”说明书【{sec}】：{clean(first, 300)}")
    if lang == "zh" and top.language == "en":
        body += "（原文为英文）"
        if d.glossary:  # the Chinese terms beside the English words they came from, never alone
            body += "原文术语：" + "；".join(f"{g.en}＝{g.zh}" for g in d.glossary) + "。"
    body += silent
    for key in ret.substances[:MAX_POPULATIONS]:  # silent is not "safe together"
        if key not in said:
            sub = BY_KEY[key]
            body += t(lang, f" The label text in the knowledge base does not mention {sub.en}; that is no evidence "
                            "that they can be combined, so ask a doctor or pharmacist.",
                      f"知识库中的说明书未提及{sub.zh}，这并不说明可以同用，请咨询医生或药师。")
    if ev.intent in CLARIFY_INTENTS and not ret.populations and not gives_context(f"{ev.question} {ev.history_text}"):
        d.follow.append(CLARIFY_WHO[lang])  # BianQue-style: the label's advice depends on who takes it
    if ev.intent in DOSE_INTENTS or ret.populations:
        body += DOSE_NOTE[lang]
    pairs = "".join(" " + pair_check(d, rec) for rec in ret.pairs)  # never "safe": a pair without a record says so
    drugs = [lk for lk in ev.linked if lk.type == "Drug"]  # the follow-ups name the drug of the answer's label, not
    # one the asker already takes
    name = next((lk.name for lk in drugs if lk.id in top.drug_ids), drugs[0].name if drugs else "")
    for k in ("contraindications", "adverse_reactions", "interactions", "dosage", "indications"):
        if k not in ev.sections and k != top.section and len(d.follow) < 2:
            d.follow.append(t(lang, f"What are the {sec_title(k, 'en').lower()} of {name}?",
                              f"{name}的{sec_title(k, 'zh')}是什么？"))
    return d.finish("answered", body + note + pairs)


def _populations(ret: Retrieval, d: Draft, label_src: list[Source], top: Source | None
                 ) -> tuple[dict[str, tuple[Source, str]], str]:
    """Quote the sentence of each population (or topic) passage as a fact: population or topic → (its source, the
    sentence quoted); and what the answer says for a patient population the label text is silent about."""
    lang = ret.evidence.language
    said: dict[str, tuple[Source, str]] = {}
    for s in label_src:
        if s.population is not None and s.population not in said:
            quoted = _population_fact(d, s, s.population, s.title if top and s.doc_id != top.doc_id else None)
            if quoted is not None:
                said[s.population] = (s, quoted)
    silent = ""
    for key in ret.populations[:MAX_POPULATIONS]:  # a label silent about the patient's situation says so
        if key not in said:
            pop = BY_KEY[key]
            silent += t(lang, f" The label text in the knowledge base says nothing specific about {pop.en}; ask a "
                              "doctor or pharmacist before using it.",
                        f"知识库中的说明书未专门提及{pop.zh}用药，用药前请咨询医生或药师。")
    return said, silent


def _population_fact(d: Draft, s: Source, key: str, other: str | None = None) -> str | None:
    """Quote the sentence of `s` about the population (or topic) as a fact; the sentence, or None when none says it.
    `other`: the title of `s` when it is another label of the drug than the one the answer leads with."""
    pop = BY_KEY[key]
    on = "For" if pop in POPULATIONS else "On"  # for a patient population; on a topic or a substance

    def says(spans: list[tuple[int, int]]) -> tuple[int, int] | None:
        return next(((a, b) for a, b in spans if pop.passage.search(s.text[a:b])), None)

    # the best-matching windows first; failing those, the first sentence that says it
    span = says(best_spans(s.text, pop.query, set(), lead=False, n=3, max_chars=400)) or says(sentence_spans(s.text))
    if span is None:
        return None
    a, b = _with_lead_in(s.text, *span)
    quoted = clean(s.text[a:b], 400)
    if other is None:
        head = t(d.ev.language, f"{on} {pop.en}, the label says: ",
                 f"关于{pop.zh}，说明书写道：")
    else:
        head = t(d.ev.language, f"{on} {pop.en}, another label of this drug "
                                f"(\"{other}\") says: ", f"关于{pop.zh}，该药的另一份说明书（“{other}”）写道：")
    d.fact(s, s.offset + a, s.offset + b, head + quoted)
    return quoted


def _with_lead_in(text: str, a: int, b: int, short: int = 80, max_chars: int = 400) -> tuple[int, int]:
    """A short span (a list item: "use of alcohol;") widened back over the sentences before it (the list's lead-in,
    "risk factors for GI bleeding include …") until it reads on its own, within `max_chars`."""
    spans = [sp for sp in sentence_spans(text) if sp[1] <= a]
    while b - a < short and spans and b - spans[-1][0] <= max_chars:
        a = spans.pop()[0]
    return a, b


def _graph_facts(d: Draft, graph_src: list[Source]) -> None:
    lang = d.ev.language
    for s in graph_src:
        e = s.edge
        if e is None or e["type"] == "INTERACTS_WITH" or len(str(e.get("dst_name", ""))) < 2:
            continue  # interactions are listed separately; one-character names are data noise (e.g. "Ⅰ")
        kind = GRAPH_KINDS.get(e["type"])
        text = t(lang, f"{e['dst_name']} is listed as a {kind[0]} drug for {e['src_name']}.",
                 f"{e['dst_name']} 是 {e['src_name']} 的{kind[1]}。") if kind else s.text
        d.fact(s, 0, len(s.section_text), text, "graph")


def _names(ev: Evidence) -> str:
    """The first linked names, each once ("Metformin, metformin" → "Metformin"), joined for the answer's language."""
    return ("、" if ev.language == "zh" else ", ").join(distinct_names(ev.linked[:3]))


def _graph_answer(ev: Evidence, d: Draft, graph_src: list[Source]) -> Answer:
    lang = ev.language
    _graph_facts(d, graph_src)
    if not d.facts:
        return d.finish("insufficient_evidence",
                        t(lang, "The knowledge base has nothing on this.", "知识库中没有相关内容。"))
    who = _names(ev)
    if ev.intent not in ("indications", "general", "disease_drugs", "interaction"):
        return d.finish("insufficient_evidence", t(
            lang, f"The knowledge base has no label for {who}, so I can't answer this from a label. The knowledge "
                  "graph links it as shown below; ask a pharmacist for dosing and safety.",
            f"知识库中没有{who}的说明书，无法依据说明书回答该问题。知识图谱中的相关信息如下，剂量与安全性问题请咨询药师。"))
    return d.finish("answered", t(lang, f"From the knowledge graph (no label text in the knowledge base for {who}):",
                                  f"以下信息来自知识图谱（知识库中没有{who}的说明书原文）："))
