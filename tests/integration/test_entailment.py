"""The optional entailment check: a sentence-transformers CrossEncoder (here a tiny randomly initialised one with the
real multilingual tokenizer, since no NLI weights ship in any package here) behind DRUGRAG_ENTAILMENT_MODEL, used on
top of the deterministic fact check and never instead of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeGenerator

from rag.answer.entailment import CrossEncoderEntailment
from rag.components import make_entailment
from rag.core.errors import ModelUnavailable
from rag.core.settings import Settings
from rag.service import DrugService
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def tiny_nli(model_dir, tmp_path_factory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny-nli")
    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=3, max_position_embeddings=512,
                     id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
                     label2id={"contradiction": 0, "entailment": 1, "neutral": 2})
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_cross_encoder_entailment_reads_the_entailment_label(tiny_nli):
    m = CrossEncoderEntailment(str(tiny_nli), threshold=0.0)
    p = m.probability("The maximum dose is 8 mg once daily.", "Take at most 8 mg a day.")
    assert 0.0 <= p <= 1.0 and m.entails("a", "b")
    assert not CrossEncoderEntailment(str(tiny_nli), threshold=1.01).entails("a", "b")
    with pytest.raises(ModelUnavailable):
        CrossEncoderEntailment(str(tiny_nli / "missing")).probability("a", "b")


def test_settings_turn_it_on_and_the_service_uses_it(tiny_nli, kb_copy):
    assert make_entailment(Settings()) is None  # off by default
    assert isinstance(make_entailment(Settings(entailment_model=str(tiny_nli))), CrossEncoderEntailment)

    def reply(question, ev):
        src = next(s for s in ev.sources if s.kind == "label")
        quote = src.section_text[:120]
        return {"status": "answered", "answer": "x", "follow_up_questions": [],
                "facts": [{"type": src.section, "text": quote, "citations": [src.sid], "quote": quote}]}

    for threshold, used in ((0.0, True), (1.01, False)):  # an impossible bar: every fact fails the second opinion
        svc = DrugService(make_settings(kb_copy, entailment_model=str(tiny_nli), entailment_threshold=threshold),
                          generator=FakeGenerator(reply))
        try:
            ans = svc.ask("What is naproxen used for?")
        finally:
            svc.close()
        assert (ans.metadata.generator == "fake") is used, ans.metadata
        if not used:
            assert "no supported facts" in (ans.metadata.fallback or "")
