"""The last gate before an answer leaves the service: every citation is checked against its source.

A label citation's quote must equal the stored section text at [start, end); a graph citation's quote must equal the
edge rendering. Facts and interactions that cite nothing valid are dropped (and counted), never shipped; so is a
glossary entry whose English words are not in the quote it cites.
"""

from __future__ import annotations

import logging

from rag.answer.schema import Answer
from rag.core.types import Evidence

log = logging.getLogger(__name__)


def citation_valid(c, ev: Evidence) -> bool:
    """A label may hold two sections with one canonical key (e.g. 'warnings' and 'precautions'): any may match."""
    return any(
        s.doc_id == c.doc_id and s.kind == c.source and s.section == c.section
        and 0 <= c.start < c.end <= len(s.section_text) and s.section_text[c.start: c.end] == c.quote
        for s in ev.sources
    )


def verify(answer: Answer, ev: Evidence) -> Answer:
    valid = {c.id for c in answer.citations if citation_valid(c, ev)}
    bad = [c.id for c in answer.citations if c.id not in valid]
    if bad:
        log.warning("dropping %d citations that are not verbatim spans of their sources: %s", len(bad), bad)
    facts = []
    for f in answer.facts:
        cites = [c for c in f.citations if c in valid]
        if cites:
            facts.append(f.model_copy(update={"citations": cites}))
    inters = []
    for it in answer.interactions:
        cites = [c for c in it.citations if c in valid]
        if cites:
            inters.append(it.model_copy(update={"citations": cites}))
    dropped = (len(answer.facts) - len(facts)) + (len(answer.interactions) - len(inters))
    used = {c for f in facts for c in f.citations} | {c for it in inters for c in it.citations}
    meta = answer.metadata.model_copy(update={"dropped_facts": answer.metadata.dropped_facts + dropped})
    quotes = {c.id: c.quote.lower() for c in answer.citations if c.id in used}
    glossary = [g for g in answer.glossary if g.citation in quotes and g.en.lower() in quotes[g.citation]]
    out = answer.model_copy(update={
        "facts": facts, "interactions": inters, "metadata": meta, "glossary": glossary,
        "citations": [c for c in answer.citations if c.id in used],
    })
    if out.status == "answered" and not out.facts and not out.interactions and (answer.facts or answer.interactions):
        out = out.model_copy(update={"status": "insufficient_evidence"})
    return out
