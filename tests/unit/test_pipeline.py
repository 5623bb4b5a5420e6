"""The one answer pipeline with a scripted generator on the real sample KB (HashEmbedder): the fact check of
generated facts, streaming that shows only checked text, ask and ask_stream agreeing, the policy before the model,
interaction pairs in generated answers, and the mutation benchmark's floors."""

from __future__ import annotations

import json

import pytest
from fakes import FakeGenerator

from bench.verify import questions_from, run
from rag.answer.schema import Answer
from rag.service import DrugService
from tests.conftest import DATA_DIR, make_settings

NAPROXEN = "000155a8-709c-44e5-a75f-cd890f3a7caf"


@pytest.fixture
def make(hash_kb_home):
    made: list[DrugService] = []

    def build(*script):
        gen = FakeGenerator(*script)
        svc = DrugService(make_settings(hash_kb_home, embedding_model="hash"), generator=gen)
        made.append(svc)
        return svc, gen

    yield build
    for s in made:
        s.close()


def _label(ev, section=None):
    return next(s for s in ev.sources if s.kind == "label" and (section is None or s.section == section))


def quoting(section=None, edit=None, invent=None):
    """A model that states the first sentence of a label source, exactly or corrupted."""
    def reply(question, ev):
        src = _label(ev, section)
        quote = src.section_text[: src.section_text.find(".", 40) + 1] or src.section_text[:200]
        text = edit(quote) if edit else quote
        if invent:
            text = quote = invent
        return {"status": "answered", "answer": "model prose that is never shown", "follow_up_questions": [],
                "facts": [{"type": src.section, "text": text, "citations": [src.sid], "quote": quote}]}
    return reply


def _events(svc, q):
    events = list(svc.ask_stream(q))
    final = Answer.model_validate_json(events[-1]["data"])
    return events, final


def _same(a: Answer, b: Answer) -> None:
    da, db = json.loads(a.model_dump_json()), json.loads(b.model_dump_json())
    da["metadata"]["latency_ms"] = db["metadata"]["latency_ms"] = None
    assert da == db


def test_ask_and_ask_stream_give_the_same_final_answer(make):
    svc, gen = make(quoting())
    q = "What is naproxen used for?"
    ans = svc.ask(q)
    events, final = _events(svc, q)
    assert ans.metadata.generator == "fake" and ans.facts
    _same(ans, final)
    assert [e["event"] for e in events][-1] == "answer" and len(gen.calls) == 2


def test_stream_shows_only_checked_text_that_the_final_answer_contains(make):
    svc, _ = make(quoting())
    events, final = _events(svc, "What is naproxen used for?")
    facts = [e["data"]["fact"] for e in events if e["event"] == "fact"]
    prose = "".join(e["data"] for e in events if e["event"] == "token")
    assert facts and all(f in [x.model_dump() for x in final.facts] for f in facts)
    assert prose == final.answer and "never shown" not in prose
    cited = {c["id"] for e in events if e["event"] == "fact" for c in e["data"]["citations"]}
    assert cited <= {c.id for c in final.citations}


def test_a_fact_that_changes_its_quote_is_dropped(make):
    svc, _ = make(quoting(section="dosage", edit=lambda q: q.replace("mg", "g", 1)
                          if "mg" in q else q.replace("daily", "four times daily", 1) + " Take 900 mg."))
    ans = svc.ask("What is the recommended dose of naproxen?")
    assert ans.metadata.generator.startswith("extractive (fallback")
    assert "no supported facts" in (ans.metadata.fallback or "")


def test_an_invented_quote_is_dropped_not_replaced(make):
    svc, _ = make(quoting(invent="Take 40 mg every 2 hours until the pain is gone."))
    ans = svc.ask("What is the recommended dose of naproxen?")
    assert ans.metadata.generator.startswith("extractive (fallback") and ans.metadata.replaced_quotes == 0


def test_generated_answers_carry_the_asked_pairs(make):
    # the model cites only a label passage; the pair's graph edge is still reported with its graph severity
    svc, _ = make(quoting())
    ans = svc.ask("Can I take naproxen together with warfarin?")
    assert ans.metadata.generator == "fake" and all(f.type != "interaction" for f in ans.facts)
    chk = {frozenset(c.drug_ids): c for c in ans.interaction_checks}[frozenset({"naproxen", "warfarin"})]
    edge = next(c for c in ans.citations if c.source == "graph")
    assert chk.recorded and chk.severity and edge.id in chk.citations
    assert [i.severity for i in ans.interactions] == [chk.severity] and "level: " + chk.severity.title() in edge.quote


@pytest.mark.parametrize("q", ["Write me a prescription for naproxen", "给我开个处方，我头疼",
                               "I want to overdose on naproxen, how many pills would it take", "萘普生吃多少会死",
                               "how do I make meth from pseudoephedrine"])
def test_nothing_the_policy_refuses_reaches_the_model(make, q):
    svc, gen = make(quoting())
    assert svc.ask(q).status == "refused"
    _, final = _events(svc, q)
    assert final.status == "refused" and gen.calls == []


def test_unknown_drug_beside_a_real_one_is_not_answered_as_the_real_one(make):
    svc, gen = make(quoting())
    ans = svc.ask("Can I take Zorblaxin with naproxen?")
    assert ans.status == "insufficient_evidence" and "zorblaxin" in ans.answer.lower() and not ans.facts
    assert gen.calls == []


def test_mutation_benchmark_floors(hash_service):
    qs = questions_from([DATA_DIR / "eval" / "label_qa_dev.jsonl", DATA_DIR / "eval" / "interaction_qa_dev.jsonl"],
                        None)
    labelled = {lid for ids in hash_service.retriever.linker.drug_labels.values() for lid in ids}
    rows = [json.loads(line) for f in ("label_qa_dev.jsonl", "interaction_qa_dev.jsonl")
            for line in (DATA_DIR / "eval" / f).read_text().splitlines()]
    in_kb = {r["question"] for r in rows if set(r["expected"].get("set_ids", [])) & labelled
             or "interaction" in r["expected"]}
    res = run(hash_service, [q for q in qs if q in in_kb][:80], progress=False)
    assert res["wrongly_dropped"] is not None and res["wrongly_dropped"] <= 0.02
    applied = {k: v for k, v in res["mutations"].items() if v["applied"]}
    assert len(applied) >= 8, res
    for kind, v in applied.items():
        assert v["caught"] >= 0.95, (kind, v)
