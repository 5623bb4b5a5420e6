"""Questions in traditional characters (Taiwan, Hong Kong) are read as simplified: names link, cues match, and the
answer echoes the question as it was asked."""

from __future__ import annotations

from rag.core.text import read_chinese, to_simplified
from rag.retrieval.context import populations
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


def test_written_cantonese_is_read_as_mandarin_and_mandarin_is_unchanged() -> None:
    assert read_chinese("有咗BB仲可唔可以食呋喃妥因？有冇要注意嘅地方？") == \
        "怀孕了还可不可以吃呋喃妥因？有没有要注意的地方？"
    assert read_chinese("屋企阿爺八十幾歲，食X使唔使減份量？") == "家里爷爷八十几岁，吃X需不需要减用量？"
    assert read_chinese("呢隻藥點食？") == "这只药怎么吃？"
    # Mandarin keeps its own 食/系/点 words (no Cantonese character in it)
    for s in ("华法林的食物禁忌", "我有系统性红斑狼疮，早点吃X可以吗", "X饮食要注意什么", "What is X for?"):
        assert read_chinese(s) == s


def test_cantonese_patient_context_and_cues_are_found() -> None:
    assert populations(read_chinese("有咗BB可唔可以食X？")) == ["pregnancy"]
    assert "pregnancy" not in populations("有咗BB可唔可以食X？")
    assert "dosage" in cues(read_chinese("X使唔使減份量？"))


def test_a_chinese_product_name_reaches_the_labelled_drug_of_its_generic_name() -> None:
    # the graph knows 布洛芬缓释胶囊 (id 布洛芬, no label); the zh→en table says 布洛芬 is ibuprofen, which has labels:
    # the longer product name must not hide the labelled drug
    lk = EntityLinker([("ibuprofen", "Ibuprofen"), ("布洛芬", "布洛芬片"), ("布洛芬", "布洛芬缓释胶囊")], [],
                      {"ibuprofen": ["lab-1"]}, zh_en={"布洛芬": "ibuprofen"})
    for q in ("布洛芬缓释胶囊一天吃几次", "医生开了布洛芬片，饭后吃吗"):
        ids = [x.id for x in lk.link(q).drugs]
        assert ids[0] == "ibuprofen" and "布洛芬" in ids, (q, ids)
    # a graph name cut at 胶 (盐酸多西环素胶丸 → 多西环素胶) took "多西环素胶囊" without its label: the name less
    # its form ending is the generic name
    lk = EntityLinker([("doxycycline", "Doxycycline"), ("多西环素胶", "盐酸多西环素胶丸")], [],
                      {"doxycycline": ["lab-2"]}, zh_en={"多西环素": "doxycycline"})
    assert [x.id for x in lk.link("多西环素胶囊怎么吃").drugs][0] == "doxycycline"


def test_a_chinese_name_typed_with_a_homophone_is_read_as_that_drug_and_other_slips_are_suggested() -> None:
    lk = EntityLinker([("warfarin", "Warfarin"), ("ibuprofen", "Ibuprofen")], [],
                      {"warfarin": ["w-1"], "ibuprofen": ["i-1"]}, zh_en={"华法林": "warfarin", "布洛芬": "ibuprofen"})
    for q, want in (("华发林的禁忌", "warfarin"), ("布洛分一次吃几片", "ibuprofen"),
                    ("华发林和布洛芬能一起吃吗", "warfarin")):
        res = lk.link(q)
        hit = [x for x in res.drugs if x.id == want]
        assert hit and hit[0].corrected and res.unlinked == [], (q, res)
    res = lk.link("华去林的禁忌")  # one character off but not the same sound: a suggestion, never a silent guess
    assert res.drugs == [] and res.unlinked == ["华去林"] and res.suggestions == ["Warfarin"]
    res = lk.link("璎钶苒桐的副作用")  # an invented name is no slip of a real one
    assert res.drugs == [] and res.unlinked == ["璎钶苒桐"] and res.suggestions == []
    # a slip at the edge of a longer name must not leave the shorter drug inside it (左氧氟沙星 typed 作氧氟沙星)
    lk = EntityLinker([("levofloxacin", "Levofloxacin"), ("ofloxacin", "Ofloxacin")], [],
                      {"levofloxacin": ["l-1"], "ofloxacin": ["o-1"]},
                      zh_en={"左氧氟沙星": "levofloxacin", "氧氟沙星": "ofloxacin"})
    res = lk.link("作氧氟沙星一天吃几次")
    assert [x.id for x in res.drugs] == ["levofloxacin"] and res.drugs[0].corrected
    assert [x.id for x in lk.link("氧氟沙星一天吃几次").drugs] == ["ofloxacin"]
    # a name followed by its dosage form is not a slip of another name that sounds like name + form (肝素胶囊 is heparin
    # capsules, not the product 肝苏胶囊)
    lk = EntityLinker([("heparin", "Heparin"), ("肝苏胶", "肝苏胶囊")], [], {"heparin": ["h-1"]},
                      zh_en={"肝素": "heparin"})
    assert [x.id for x in lk.link("肝素胶囊怎么吃").drugs][0] == "heparin"
