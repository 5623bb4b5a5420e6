"""Keyword sparse vectors (qdrant-edge BM25, multilingual) and the keyword tokenizer kept for the HashEmbedder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.retrieval.sparse import AVG_LEN, sparse_doc, sparse_query, token_index, tokenize


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


def _weights(text: str) -> dict[int, float]:
    v = sparse_doc(text)
    return dict(zip(v.indices, v.values, strict=True))


def test_bm25_document_weights() -> None:
    k, b = 1.2, 0.75
    w = _weights("aspirin aspirin ibuprofen")
    [asp] = sparse_query("aspirin").indices
    [ibu] = sparse_query("ibuprofen").indices
    norm = k * (1 - b + b * 3 / AVG_LEN)
    assert w[asp] == pytest.approx(2 * (k + 1) / (2 + norm), rel=1e-5)
    assert w[ibu] == pytest.approx((k + 1) / (1 + norm), rel=1e-5)
    long_doc = _weights("ibuprofen " + "tablet " * 300)
    assert long_doc[ibu] < w[ibu]  # longer documents weigh a term less
    assert all(0 < v < k + 1 for v in long_doc.values())


def test_english_terms_stemmed_folded_and_stopwords_dropped() -> None:
    assert sparse_query("tablets").indices == sparse_query("tablet").indices
    assert sparse_query("ＷＡＲＦＡＲＩＮ").indices == sparse_query("warfarin").indices  # full-width, case
    assert sparse_query("What is it for?").indices == []
    assert set(sparse_query("CYP3A4").indices) <= set(sparse_doc("CYP3A4-mediated metabolism").indices)


def test_chinese_words_match_inside_running_text() -> None:
    doc = set(sparse_doc("【注意事项】 孕妇禁用。用于血虚气滞、下焦虚寒所致的月经不调、痛经。").indices)
    for word in ("孕妇", "禁用", "痛经", "月经"):
        q = sparse_query(word).indices
        assert q and set(q) <= doc, word
    assert not set(sparse_query("阿司匹林").indices) & doc  # a name the text lacks matches nothing
    # a word of a question is segmented alike in the question and in the section text
    q = set(sparse_query("艾附暖宫丸孕妇能用吗？").indices)
    assert set(sparse_query("孕妇").indices) <= q & doc


def test_bm25_indices_stable_across_processes() -> None:
    code = "from rag.retrieval.sparse import sparse_query; print(sparse_query('warfarin 孕妇禁用').indices)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    assert out == str(sparse_query("warfarin 孕妇禁用").indices)
