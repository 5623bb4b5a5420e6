"""The verification gate: only verbatim spans of retrieved sources leave the service."""

from __future__ import annotations

from rag.answer.schema import Answer, Citation, Fact
from rag.answer.verify import verify
from rag.core.types import Evidence, Source

WARN = "Use with caution in patients with renal impairment. Monitor potassium."
PREC = "Precautions: avoid alcohol. Tell your doctor if you are pregnant."


def _ev() -> Evidence:
    def src(sid: str, text: str, name: str) -> Source:
        return Source(sid=sid, kind="label", doc_id="L1", title="Drug", section="warnings", section_name=name,
                      version=None, text=text, offset=0, section_text=text)
    return Evidence(question="q", language="en", intent="warnings", sections=["warnings"],
                    sources=[src("S1", WARN, "warnings"), src("S2", PREC, "precautions")])


def _answer(*cites: Citation) -> Answer:
    return Answer(question="q", language="en", status="answered", answer="a", disclaimer="d",
                  facts=[Fact(type="warnings", text=c.quote, citations=[c.id]) for c in cites], citations=list(cites))


def _cite(cid: str, text: str, quote: str) -> Citation:
    start = text.find(quote)
    return Citation(id=cid, source="label", doc_id="L1", title="Drug", section="warnings", quote=quote,
                    start=start, end=start + len(quote))


def test_two_sections_with_one_key_both_verify():
    ans = verify(_answer(_cite("C1", WARN, "Monitor potassium."), _cite("C2", PREC, "avoid alcohol.")), _ev())
    assert [f.citations for f in ans.facts] == [["C1"], ["C2"]] and ans.metadata.dropped_facts == 0


def test_tampered_quote_is_dropped_and_status_degrades():
    bad = _cite("C1", WARN, "Monitor potassium.").model_copy(update={"quote": "Monitor sodium.   "})
    ans = verify(_answer(bad), _ev())
    assert not ans.facts and not ans.citations and ans.status == "insufficient_evidence"
    assert ans.metadata.dropped_facts == 1


def test_citation_of_unretrieved_label_is_dropped():
    other = _cite("C1", WARN, "Monitor potassium.").model_copy(update={"doc_id": "L2"})
    good = _cite("C2", PREC, "avoid alcohol.")
    ans = verify(_answer(other, good), _ev())
    assert [c.id for c in ans.citations] == ["C2"] and ans.status == "answered"
