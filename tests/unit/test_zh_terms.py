"""Chinese answers quoting an English label carry the Chinese terms for the quote's English words, each beside the
words and citing the quote they came from."""

from __future__ import annotations

from rag.answer.schema import Gloss
from rag.answer.verify import verify
from rag.answer.zh_terms import gloss


def test_terms_are_found_on_word_boundaries_longest_first() -> None:
    q = ("indicated for the relief of the signs and symptoms of: • rheumatoid arthritis • osteoarthritis • "
         "Polyarticular Juvenile Idiopathic Arthritis; painful conditions")
    assert gloss(q) == [("rheumatoid arthritis", "类风湿关节炎"), ("osteoarthritis", "骨关节炎"),
                        ("Juvenile Idiopathic Arthritis", "幼年特发性关节炎")]  # not "pain" inside "painful"
    assert gloss("Take with food. Store at room temperature.") == []


def test_a_chinese_question_about_an_english_label_gets_the_terms_beside_the_quote(hash_service) -> None:
    ans = hash_service.ask("萘普生的适应症是什么？")
    assert ans.status == "answered" and ans.language == "zh"
    quotes = {c.id: c.quote for c in ans.citations}
    got = {g.en.lower(): g.zh for g in ans.glossary}
    assert got.get("rheumatoid arthritis") == "类风湿关节炎" and got.get("osteoarthritis") == "骨关节炎"
    for g in ans.glossary:
        assert g.en in quotes[g.citation]
    assert "rheumatoid arthritis＝类风湿关节炎" in ans.answer
    assert hash_service.ask("What is naproxen used for?").glossary == []  # English answers need none


def test_verify_drops_a_gloss_whose_words_are_not_in_its_quote(hash_service) -> None:
    ret = hash_service.retrieve("萘普生的适应症是什么？")
    ans = hash_service.pipeline.answer(ret)
    forged = ans.model_copy(update={"glossary": [*ans.glossary,
                                                 Gloss(en="hypertension", zh="高血压", citation=ans.citations[0].id)]})
    checked = verify(forged, ret.evidence)
    assert [g.en for g in checked.glossary] == [g.en for g in ans.glossary]
