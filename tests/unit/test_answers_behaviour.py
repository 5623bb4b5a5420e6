"""The main job end to end through DrugService on the real sample KB (HashEmbedder, so no model): linking, routing,
graph-first interactions, extractive citations checked against the source files, abstention and refusal."""

from __future__ import annotations

import json

import pytest

from kb_loaders.openfda import load_openfda
from rag.answer.schema import Answer, Turn
from rag.core.errors import InvalidInput, NotFound


@pytest.fixture(scope="module")
def service(hash_service):
    return hash_service


@pytest.fixture(scope="session")
def source_labels(data_dir):
    """Labels read straight from the source files: the independent truth for verbatim checks."""
    return {lab.id: lab for lab in load_openfda(data_dir / "openfda", limit=60).labels}


def assert_verbatim(ans: Answer, source_labels) -> None:
    for c in ans.citations:
        if c.source == "label" and c.doc_id in source_labels:
            texts = [s.text for s in source_labels[c.doc_id].sections if s.key == c.section]
            assert any(t[c.start: c.end] == c.quote for t in texts), (c.doc_id, c.section, c.quote[:80])
    ids = {c.id for c in ans.citations}
    for f in ans.facts:
        assert f.citations and set(f.citations) <= ids
    for it in ans.interactions:
        assert it.citations and set(it.citations) <= ids


def test_english_answer_cites_indications_verbatim(service, source_labels):
    ans = service.ask("What is naproxen used for?")
    assert ans.status == "answered" and ans.language == "en"
    c = ans.citations[0]
    assert c.doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf" and c.section == "indications"
    assert "indicated" in c.quote and "rheumatoid arthritis" in c.quote
    assert_verbatim(ans, source_labels)
    assert "not a prescription" in ans.disclaimer


def test_salt_and_case_forms_link_to_the_same_label(service):
    a = service.ask("What is the recommended dose of SERTRALINE HYDROCHLORIDE?")
    b = service.ask("what is the recommended dose of sertraline")
    assert a.citations[0].doc_id == b.citations[0].doc_id
    assert a.citations[0].section == "dosage"


def test_chinese_question_about_english_only_label(service, source_labels):
    ans = service.ask("萘普生的适应症是什么？")  # naproxen by its Chinese name; the label is English only
    assert ans.status == "answered" and ans.language == "zh"
    assert ans.citations[0].doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf"
    assert ans.citations[0].section == "indications"
    assert "说明书" in ans.answer and "不构成医疗建议" in ans.disclaimer
    assert_verbatim(ans, source_labels)


def test_chinese_insert_answer(service):
    ans = service.ask("艾附暖宫丸的用法用量是什么？")
    if not any(e.in_labels for e in ans.metadata.linked):
        pytest.skip("insert not in the first 60 Chinese inserts of the sample")
    assert ans.status == "answered" and ans.citations[0].section == "dosage"
    assert "口服" in ans.citations[0].quote


def test_major_interaction_is_graph_first_with_edge_citation(service):
    ans = service.ask("Can I take warfarin together with aspirin?")
    assert ans.status == "answered"
    assert ans.interactions and ans.interactions[0].severity == "major"
    cid = ans.interactions[0].citations[0]
    cit = next(c for c in ans.citations if c.id == cid)
    assert cit.source == "graph" and cit.doc_id == "INTERACTS_WITH:acetylsalicylic acid|warfarin"
    assert "Major" in cit.quote


def test_interaction_absent_from_graph_is_not_called_safe(service):
    # both drugs are in DDInter, but DDInter records no interaction between them
    ans = service.ask("Can I take loratadine together with nitisinone?")
    assert not ans.interactions
    assert "no interaction is recorded in the knowledge base" in ans.answer
    # the only "safe" in the answer is the one that says absence of a record is not safety
    assert "does not mean the combination is safe" in ans.answer and ans.answer.lower().count("safe") == 1


def test_interactions_endpoint_service(service):
    ans = service.interactions(["Warfarin", "Acetylsalicylic acid", "Omeprazole"])
    sev = {frozenset(x.lower() for x in it.drugs): it.severity for it in ans.interactions}
    assert sev[frozenset({"warfarin", "acetylsalicylic acid"})] == "major"
    with pytest.raises(NotFound, match="fooxaban"):
        service.interactions(["warfarin", "fooxaban"])
    with pytest.raises(InvalidInput):
        service.interactions(["warfarin"])


def test_unknown_drug_is_insufficient_evidence(service):
    ans = service.ask("What is fooxaban used for?")
    assert ans.status == "insufficient_evidence" and not ans.facts and not ans.citations
    assert "fooxaban" in ans.answer


def test_a_misspelt_name_is_answered_with_the_correction_said_first(service):
    en = service.ask("What is naproxne used for?")
    assert en.status == "answered" and en.citations
    assert en.answer.startswith('(Read "naproxne" as Naproxen')
    assert any(lk.corrected and lk.matched == "naproxne" for lk in en.metadata.linked)
    zh = service.ask("naproxne 有什么副作用？")
    assert zh.status == "answered" and zh.answer.startswith("（已将“naproxne”按Naproxen理解")
    exact = service.ask("What is naproxen used for?")
    assert not any(lk.corrected for lk in exact.metadata.linked) and not exact.answer.startswith("(Read")
    streamed = [e for e in service.ask_stream("What is naproxne used for?") if e["event"] == "token"]
    assert "".join(e["data"] for e in streamed).startswith('(Read "naproxne"')


def test_a_specialist_named_beside_a_known_drug_is_not_an_unknown_drug(service):
    lr = service.retriever.linker.link("My rheumatologist put me on naproxen, what is it for?")
    assert "naproxen" in [lk.id for lk in lr.drugs] and lr.unlinked == []
    assert service.retriever.linker.link("Can my podiatrist give me Zorblaxin?").unlinked == ["zorblaxin"]


def test_no_drug_named_asks_for_clarification_in_users_language(service):
    en = service.ask("What is the recommended dose?")
    zh = service.ask("这个药一次吃多少？")
    assert en.status == zh.status == "needs_clarification"
    assert en.follow_up_questions and zh.follow_up_questions
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.follow_up_questions[0])


def test_prescription_request_is_refused(service):
    for q in ("Write me a prescription for ibuprofen", "给我开个处方，我头疼"):
        ans = service.ask(q)
        assert ans.status == "refused" and not ans.facts


def test_disease_question_answers_from_graph_edges(service):
    ans = service.ask("高血压吃什么药？")
    assert ans.status == "answered" and ans.facts
    assert all(c.source == "graph" and c.doc_id.startswith(("RECOMMAND_DRUG:", "COMMON_DRUG:")) for c in ans.citations)


def test_graph_only_drug_is_cited_as_graph_edges(service):
    ans = service.ask("阿莫西林胶囊治疗什么病？")  # a Chinese product name with no label in the KB
    assert ans.status == "answered"
    assert ans.citations and all(c.source == "graph" for c in ans.citations)
    assert any("阿莫西林" in c.quote for c in ans.citations)


def test_multi_turn_carries_the_drug(service):
    hist = [Turn(role="user", content="What is naproxen used for?"), Turn(role="assistant", content="…")]
    ans = service.ask("And who should not take it?", hist)
    assert ans.status == "answered"
    assert ans.citations[0].doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf"
    assert ans.citations[0].section in ("contraindications", "warnings", "boxed_warning")


def test_bad_questions_are_clear_errors(service):
    with pytest.raises(InvalidInput, match="empty"):
        service.ask("   ")
    with pytest.raises(InvalidInput, match="too long"):
        service.ask("warfarin " * 300)


def test_answer_json_schema_has_no_prescription_field():
    schema = json.dumps(Answer.model_json_schema())
    assert "prescription" not in schema.lower()
    for key in ("status", "facts", "interactions", "citations", "follow_up_questions", "disclaimer"):
        assert key in Answer.model_json_schema()["properties"]


def test_pair_without_graph_record_but_named_in_a_label_points_to_the_label(service):
    # DDInter has no naproxen–furosemide pair; the naproxen label's interaction table names furosemide
    ans = service.ask("Can I take naproxen together with furosemide?")
    assert not ans.interactions
    assert "no record of this pair" in ans.answer and "never proof of safety" in ans.answer
    assert any("furosemide" in c.quote.lower() and c.section == "interactions" for c in ans.citations)


def test_dose_question_without_context_asks_who_it_is_for(service):
    bare = service.ask("What is the recommended dose of olanzapine?")
    assert bare.status == "answered" and "adult or a child" in bare.follow_up_questions[0]
    zh = service.ask("奥氮平一次吃多少？")
    assert "成人还是儿童" in zh.follow_up_questions[0]
    told = service.ask("What is the recommended dose of olanzapine for a 70 year old adult?")
    assert all("adult or a child" not in q for q in told.follow_up_questions)


def test_a_form_word_before_a_name_is_no_part_of_it(service):
    # "for" is a dosage-form word ("X for injection"); leading, it made "for naproxen" one name, so a misspelt salt
    # after the name could not join it ("fostemsavir trometkamine" became two drugs, and an interaction question)
    lr = service.retriever.linker.link("what is the usual dose for naproxen")
    assert lr.drugs and {lk.matched for lk in lr.drugs} == {"naproxen"}
    lr = service.retriever.linker.link("naproxen for oral suspension dose")
    assert lr.drugs and {lk.matched for lk in lr.drugs} == {"naproxen for oral suspension"}


def test_a_long_product_name_with_one_slip_links_to_its_label(service):
    # product names of four and five words ("cool relief gel with aloe"): a slip in one word left the whole name
    # unlinked while misspelt names were read over three words at most
    lk = service.retriever.linker
    long_names = [k for n in (4, 5) for k in lk._fuzzy_keys.get(n, [])  # not combinations of names ("X and Y")
                  if any(t == "Drug" and lk.drug_labels.get(i) for t, i in lk.keys[k])
                  and not any(w in lk.keys for w in k.split())]
    assert long_names, "the sample has product names of four or five words"
    checked = 0
    for name in long_names:
        words = name.split()
        j = max(range(len(words)), key=lambda k: len(words[k]))
        w = words[j]
        slip = " ".join(words[:j] + [w[:2] + w[2] + w[2:]] + words[j + 1:])  # one letter doubled
        if len(w) < 5 or slip in lk.keys:
            continue
        want = {i for t, i in lk.keys[name] if t == "Drug"}
        lr = lk.link(f"does {slip} contain any preservatives?")
        assert want & {x.id for x in lr.drugs}, (slip, [x.name for x in lr.drugs], lr.unlinked)
        checked += 1
        if checked == 10:
            break
    assert checked >= 2  # the 60-label sample has two ("pain reliever extra strength", "oasis tears lubricant eye")
