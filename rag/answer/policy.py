"""The answer policy: what is answered at all. It runs first, for every answer builder and every generator; what it
decides here never reaches a model.

- Self-harm intent → refused with crisis resources (emergency numbers, 988 / 12356), never a dose or pill count.
- A request to make drugs from a medicine or to get high on one → refused.
- A request for a prescription or a personal treatment plan (decided by meaning, rag.retrieval.routing) → refused.
- A name that matches no drug in the knowledge base (an unknown or invented drug, alone or beside a real one) →
  insufficient_evidence, naming it, with the closest real names as suggestions — never an answer about another drug.
- A prefix several products share ("insulin") → needs_clarification listing them.
- No drug or disease named at all → needs_clarification, in the user's language.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.answer.schema import Answer, AnswerMetadata
from rag.answer.text import disclaimer, distinct_names, t
from rag.retrieval.retriever import Retrieval

Suggest = Callable[[str], list[str]]

# intent → (English answer, Chinese answer, follow-up questions (en, zh)) for what the policy refuses outright
REFUSALS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "self_harm": (  # crisis resources, never a pill count
        "I'm sorry you're going through this. I can't help with that, but you don't have to face it alone. If you "
        "might act on these thoughts or have already taken too much of a medicine, call your local emergency "
        "number now (911 in the US, 120 in mainland China). You can call or text 988 (US Suicide & Crisis "
        "Lifeline) or call 12356 (China's national mental-health hotline) to talk to someone right away.",
        "听到你这么难受，我很难过。我不能提供这方面的信息，但你并不孤单。如果你可能伤害自己，或已经服用了过量的药物，"
        "请立即拨打急救电话 120（或 110）。你也可以拨打全国心理援助热线 12356，马上和专业人员聊一聊。", []),
    "misuse": (
        "I can't help with making drugs or using medicines to get high. If you're worried about your own or "
        "someone's drug use, a doctor or pharmacist can help confidentially.",
        "我不能提供制造毒品或滥用药物的信息。如果担心自己或他人的用药问题，可以向医生或药师求助。", []),
    "prescription": (
        "I can't write prescriptions or personal treatment plans. A licensed doctor must prescribe medicines; "
        "I can show what drug labels say about a drug's uses, doses and risks.",
        "根据相关规定，AI 不能开具处方或制定个人用药方案，处方须由执业医师开具。我可以提供药品说明书中关于适应症、"
        "用法用量和风险的信息。",
        [("Would you like the label's dosage information for a specific drug?",
          "需要查询某个药品说明书中的用法用量吗？")]),
}


def decide(ret: Retrieval, suggest: Suggest | None = None, prefix_candidates: Suggest | None = None) -> Answer | None:
    """A finished answer when the policy decides the question, else None (the question goes on to be answered)."""
    ev, links = ret.evidence, ret.links
    lang = ev.language
    meta = AnswerMetadata(generator="policy", linked=ev.linked, routed_sections=ev.sections,
                          retrieved_labels=ev.retrieved_labels)

    def done(status: str, answer: str, follow: list[str]) -> Answer:
        return Answer(question=ev.question, language=lang, status=status, answer=answer,  # type: ignore[arg-type]
                      follow_up_questions=follow[:3], disclaimer=disclaimer(lang), metadata=meta)

    if ev.intent in REFUSALS:  # nothing was retrieved for these (rag.retrieval.routing.POLICY_INTENTS)
        en, zh, offers = REFUSALS[ev.intent]
        return done("refused", t(lang, en, zh), [t(lang, a, b) for a, b in offers])
    if links.unlinked and not links.drugs:
        options = [c for w in links.unlinked[:2] for c in (prefix_candidates(w) if prefix_candidates else [])]
        if options:  # "insulin": several products start with it; ask which one
            return done("needs_clarification", t(
                lang, f"Several drugs match \"{links.unlinked[0]}\": {', '.join(options)}. Which one do you mean?",
                f"有多种药品与“{links.unlinked[0]}”匹配：{'、'.join(options)}。请问您指的是哪一种？"),
                [t(lang, f"Do you mean {c}?", f"您是指 {c} 吗？") for c in options[:3]])
    if links.unlinked:
        names = ", ".join(links.unlinked[:3])
        cands = links.suggestions or (suggest(ev.question) if suggest and not links.drugs else [])
        follow = [t(lang, f"Did you mean {c}?", f"您是指 {c} 吗？") for c in list(dict.fromkeys(cands))[:3]]
        known = distinct_names(links.drugs[:3])  # "Ibuprofen" and "ibuprofen" once, as first written
        also = t(lang, f" I do know {', '.join(known)}, but I won't answer about it in place of \"{names}\".",
                 f"知识库中有{'、'.join(known)}，但不能用它代替“{names}”作答。") if known else ""
        return done("insufficient_evidence", t(
            lang,
            f"I found no drug named \"{names}\" in the knowledge base, so I can't answer from its label.{also} "
            "Check the spelling, or ask a pharmacist.",
            f"知识库中没有找到“{names}”对应的药品，无法依据说明书回答。{also}请检查名称或咨询药师。"), follow)
    if not links.links and links.misspelt and links.suggestions:  # "Drug: nlutamide": close to several names, sure of
        # none — ask which, never guess
        word, cands = links.misspelt[0], links.suggestions[:3]
        return done("needs_clarification", t(
            lang, f"I found no drug named \"{word}\". Did you mean {' or '.join(cands)}?",
            f"知识库中没有“{word}”这个药名。您是指{'还是'.join(cands)}{'吗' if len(cands) == 1 else ''}？"),
            [t(lang, f"Did you mean {c}?", f"您是指 {c} 吗？") for c in cands])
    if not links.links:
        return done("needs_clarification", t(
            lang, "Which drug do you mean? Please name the medicine so I can look up its label.",
            "请问您问的是哪种药品？请告诉我药品名称，以便查询说明书。"),
            [t(lang, "Which drug (generic or brand name) are you asking about?",
               "请问您想咨询哪一种药品（通用名或商品名）？")])
    return None
