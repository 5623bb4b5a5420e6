"""Questions in traditional characters (Taiwan, Hong Kong) are read as simplified: names link, cues match, and the
answer echoes the question as it was asked."""

from __future__ import annotations

from rag.core.text import to_simplified
from rag.retrieval.linking import EntityLinker
from rag.retrieval.routing import cues


def test_traditional_characters_become_simplified_and_simplified_text_is_unchanged() -> None:
    assert to_simplified("華法林的劑量是多少？懷孕可以吃嗎") == "华法林的剂量是多少？怀孕可以吃吗"
    for s in ("萘普生有哪些禁忌？", "我肾不好，布洛芬一次吃几片", "What is warfarin for?", ""):
        assert to_simplified(s) == s


def test_cues_match_after_conversion() -> None:
    assert "indications" not in cues("X的適應症") and "indications" in cues(to_simplified("X的適應症"))
    assert "pediatric" not in cues("兒童能吃X嗎") and "pediatric" in cues(to_simplified("兒童能吃X嗎"))


def test_a_name_whose_simplified_form_differs_still_links() -> None:
    # 噁 is the standard form in 磺胺甲噁唑; conversion writes it 恶, so the linker holds both forms
    lk = EntityLinker([("sulfamethoxazole", "Sulfamethoxazole")], [], {"sulfamethoxazole": ["smx-1"]},
                      zh_en={"复方磺胺甲噁唑片": "sulfamethoxazole", "华法林": "warfarin"})
    for q in ("复方磺胺甲噁唑片怎么吃", "複方磺胺甲噁唑片怎麼吃"):
        assert [x.id for x in lk.link(q).drugs] == ["sulfamethoxazole"], q
    assert [x.id for x in lk.link("華法林的副作用").drugs] == ["warfarin"]


def test_a_traditional_question_is_answered_from_the_kb(hash_service) -> None:
    q = "萘普生的適應症是什麼？"  # 適應症: the indications cue only in its simplified form
    ans = hash_service.ask(q)
    assert ans.status == "answered" and ans.language == "zh" and ans.question == q
    assert any(lk.name.lower() == "naproxen" for lk in ans.metadata.linked)
    assert any(c.source == "label" and c.section == "indications" for c in ans.citations)
