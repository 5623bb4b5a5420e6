"""Answer citations: one per distinct (source, span), ids C1, C2, …; the quote is always cut from the source's stored
section text, so it is a verbatim span by construction. `Draft` collects an answer's parts around them. Used by every
answer builder (extractive, interactions, grounding of generated answers)."""

from __future__ import annotations

from rag.answer.schema import (
    Answer,
    AnswerMetadata,
    Citation,
    Fact,
    Gloss,
    Interaction,
    InteractionCheck,
    Status,
)
from rag.answer.text import disclaimer
from rag.answer.zh_terms import gloss
from rag.core.types import Evidence, Source


class Citations:
    def __init__(self) -> None:
        self.items: list[Citation] = []

    def add(self, src: Source, start: int, end: int, replaced: bool = False) -> str:
        for c in self.items:
            if c.doc_id == src.doc_id and c.section == src.section and c.start == start and c.end == end:
                if not replaced and c.quote_replaced:  # a verbatim quote of the same span wins
                    c.quote_replaced = False
                return c.id
        cid = f"C{len(self.items) + 1}"
        self.items.append(Citation(
            id=cid, source=src.kind, doc_id=src.doc_id, title=src.title, section=src.section,
            section_name=src.section_name, version=src.version, quote=src.section_text[start:end],
            start=start, end=end, quote_replaced=replaced,
        ))
        return cid

    def whole(self, src: Source) -> str:
        """Cite a source's whole text (a graph edge rendering)."""
        return self.add(src, 0, len(src.section_text))


class Draft:
    """An answer being built: its citations, facts, interactions, pair checks and follow-ups, finished once."""

    def __init__(self, ev: Evidence, generator: str = "extractive") -> None:
        self.ev = ev
        self.cites = Citations()
        self.facts: list[Fact] = []
        self.interactions: list[Interaction] = []
        self.checks: list[InteractionCheck] = []
        self.follow: list[str] = []
        self.glossary: list[Gloss] = []
        self.meta = AnswerMetadata(generator=generator, linked=ev.linked, routed_sections=ev.sections,
                                   retrieved_labels=ev.retrieved_labels)

    def fact(self, src: Source, start: int, end: int, text: str | None = None, kind: str | None = None) -> str:
        """Cite [start, end) of the source's section and add a fact (the quoted text unless `text` is given)."""
        cid = self.cites.add(src, start, end)
        if self.ev.language == "zh" and src.kind == "label" and src.language == "en":
            have = {g.zh for g in self.glossary}
            self.glossary += [Gloss(en=en, zh=zh, citation=cid) for en, zh in gloss(src.section_text[start:end])
                              if zh not in have]
        if all(cid not in f.citations for f in self.facts):
            self.facts.append(Fact(type=kind or src.section or "other",
                                   text=text if text is not None else clean(src.section_text[start:end]),
                                   citations=[cid]))
        return cid

    def finish(self, status: Status, answer: str) -> Answer:
        return Answer(question=self.ev.question, language=self.ev.language, status=status, answer=answer,
                      facts=self.facts, interactions=self.interactions, interaction_checks=self.checks,
                      citations=self.cites.items, glossary=self.glossary,
                      follow_up_questions=list(dict.fromkeys(self.follow))[:3],
                      disclaimer=disclaimer(self.ev.language), metadata=self.meta)


def clean(s: str, limit: int = 600) -> str:
    """Whitespace collapsed, cut at a word boundary with an ellipsis past `limit` characters (fact text only: the
    citation's quote is always the exact span)."""
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1].rsplit(" ", 1)[0] + "…"
