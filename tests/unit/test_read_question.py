"""rag.core.text.read_question: what retrieval reads (shorthand written out, heading-word slips read as the word)."""

from __future__ import annotations

import pytest

from rag.core.text import read_question


@pytest.mark.parametrize(("asked", "read"), [
    ("common ADRs w/ atazanavir?", "common adverse drug reactions with atazanavir?"),
    ("BBW for X", "boxed warning for X"),
    ("pt 68 y/o, CrCl 30: X dose?", "patient 68 year old, creatinine clearance 30: X dose?"),
    ("indicaitons for hydrocortisone??", "indications for hydrocortisone??"),
    ("X ingrediants list", "X ingredients list"),
    ("X contradictions?", "X contraindications?"),
    ("naproxen side affects", "naproxen side effects"),
    ("abatacept有什么付作用？", "abatacept有什么副作用？"),
    ("X 的禁急是什么", "X 的禁忌是什么"),
    ("X用发用量", "X用法用量"),
    ("华法林和阿司匹林相互做用", "华法林和阿司匹林相互作用"),
    ("zinc oxide yongliang 是多少", "zinc oxide 用量 是多少"),
    ("艾附暖宫丸的fuzuoyong大不大", "艾附暖宫丸的副作用大不大"),
    ("caplyta是只什么病的 医生也没说清楚", "caplyta是治什么病的 医生也没说清楚"),  # voice input: 只 for 治
    ("这药知啥病", "这药治啥病"),
    # pinyin initials (probe34's tuning half: "Pindolol zysx" was answered "no drug named zysx")
    ("Pindolol zysx", "Pindolol 注意事项"), ("阿莫西林yfyl是啥", "阿莫西林用法用量是啥"),
    ("X的fzy大吗", "X的副作用大吗"),
])
def test_shorthand_and_slips_are_read_as_the_label_words(asked, read):
    assert read_question(asked) == read


@pytest.mark.parametrize("q", [
    "紧急情况下能吃布洛芬吗",  # 紧急 (urgent) sounds like 禁忌 but is a word of its own
    "What are the indications for interferon?",  # drug names near heading words stay as typed
    "Can I take indinavir with ritonavir?",
    "What is naproxen used for?",
    "How often should PT/INR be checked on warfarin?",  # prothrombin time, not "patient"
    "X overdosage?",  # a heading word of its own, not a slip of "overdose"
    "我想弄清楚这个药里除了主要成分以外还加了哪些辅料",  # 药里 (in the medicine) sounds like 药理
    "X跟它们会相互作用伐？",  # Shanghainese 伐, not 用法
    "syzygy and fuzzy logic",  # initials only as whole words
])
def test_ordinary_text_and_drug_names_are_unchanged(q):
    assert read_question(q) == q


def test_traditional_chinese_and_cantonese_are_still_read_as_mandarin():
    assert read_question("呢隻藥嘅副作用係咩") == read_question("呢只药嘅副作用系咩")
