"""Answer citations: one per distinct (source, span), ids C1, C2, …; the quote is always cut from the source's stored
section text, so it is a verbatim span by construction. Used by every answer builder."""

from __future__ import annotations

from rag.answer.schema import Citation
from rag.core.types import Source


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
