"""Keyword sparse vectors: tokenizer (English, Chinese), stable indices, BM25 document weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.retrieval.sparse import AVGDL, K1, B, sparse_doc, sparse_query, token_index, tokenize


def test_tokenize_english() -> None:
    text = "Warfarin Sodium Tablets, USP are indicated for the prophylaxis of CYP3A4-mediated 5.1 mg/kg; 10mg doses."
    assert tokenize(text) == ["warfarin", "sodium", "tablet", "usp", "indicated", "prophylaxis", "cyp3a4",
                              "mediated", "5.1", "mg", "kg", "10", "mg", "dose"]
    assert tokenize("What is it for?") == []  # stopwords only
    assert tokenize("ＡＳＰＩＲＩＮ ８１ｍｇ") == ["aspirin", "81", "mg"]  # NFKC folds full-width forms
    assert tokenize("Therapies") == ["therapy"]
    assert tokenize("") == []


def test_tokenize_chinese_unigrams_and_bigrams() -> None:
    assert tokenize("用于痛经") == ["用", "于", "用于", "痛", "于痛", "经", "痛经"]
    toks = tokenize("艾附暖宫丸：孕妇禁用。Aspirin 100mg")
    assert "暖宫" in toks and "禁用" in toks and "孕妇" in toks
    assert "：" not in toks and "。" not in toks and "丸孕" not in toks  # punctuation breaks a run
    assert toks[-3:] == ["aspirin", "100", "mg"]


def test_stable_index_across_processes() -> None:
    assert token_index("warfarin") == 209303957  # pinned: the stored index depends on it
    assert 0 <= token_index("痛经") < 2**31
    code = "from rag.retrieval.sparse import token_index; print(token_index('warfarin'), token_index('痛经'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == [str(token_index("warfarin")), str(token_index("痛经"))]


@pytest.mark.parametrize("text", [
    "Aspirin aspirin ASPIRIN is contraindicated in patients with aspirin allergy; aspirin 81 mg.",
    "本品用于血虚气滞、下焦虚寒所致的月经不调、痛经。孕妇禁用。",
    "",
])
def test_sorted_unique_indices(text: str) -> None:
    for vec in (sparse_doc(text), sparse_query(text)):
        assert vec.indices == sorted(set(vec.indices))
        assert len(vec.indices) == len(vec.values)
        assert all(0 <= i < 2**31 for i in vec.indices)
    assert set(sparse_query(text).values) <= {1.0}
    assert set(sparse_doc(text).indices) == set(sparse_query(text).indices)


def test_bm25_document_weights() -> None:
    vec = sparse_doc("aspirin aspirin ibuprofen")
    w = dict(zip(vec.indices, vec.values, strict=True))
    norm = K1 * (1 - B + B * 3 / AVGDL)
    assert w[token_index("aspirin")] == pytest.approx(2 * (K1 + 1) / (2 + norm))
    assert w[token_index("ibuprofen")] == pytest.approx((K1 + 1) / (1 + norm))
    assert w[token_index("aspirin")] > w[token_index("ibuprofen")]
    long_doc = sparse_doc("ibuprofen " + "tablet " * 300)
    assert dict(zip(long_doc.indices, long_doc.values, strict=True))[token_index("ibuprofen")] < w[
        token_index("ibuprofen")]  # longer documents weigh a term less
    assert all(0 < v < K1 + 1 for v in long_doc.values)
