"""Alcohol, grapefruit, supplements and other things taken beside one drug: the cue, the route, the passage about it
and what an answer says when the label is silent; plus the linking and cue words that came with them (a Chinese
class word is not a product, supplements are not an unknown drug, which-drugs-to-avoid is an interaction question)."""

from __future__ import annotations

import pytest

from rag.answer.extractive import _with_lead_in
from rag.retrieval.context import BY_KEY, populations, substances
from rag.retrieval.linking import EntityLinker
from rag.retrieval.routing import after_retraction, asks_to_prescribe, cues, route


@pytest.mark.parametrize(("text", "keys"), [
    ("can I have a glass of wine while I'm on X", ["alcohol"]),
    ("X with beer?", ["alcohol"]),
    ("吃X期间能喝点酒吗", ["alcohol"]),
    ("is grapefruit juice a problem with X?", ["grapefruit"]),
    ("X和西柚汁", ["grapefruit"]),
    ("I take a bunch of supplements, anything that doesn't play well with X?", ["supplements"]),
    ("X和保健品一起吃有影响吗", ["supplements"]),
    ("St John's wort and X", ["supplements"]),
    ("coffee on X?", ["caffeine"]),
    ("I smoke, does it matter with X", ["tobacco"]),
    ("foods or drinks to avoid when taking X", ["food"]),
    ("吃X要忌口吗", ["food"]),
    # a vaccine beside the drug (the sample's "can i get a flu shot" after naproxen was a one-drug interaction
    # question answered with the graph's list of other drugs on one machine's vectors)
    ("the pharmacy gave me X, can i get a flu shot", ["vaccines"]), ("我在吃X，能打流感疫苗吗", ["vaccines"]),
    ("X and live vaccines?", ["vaccines"]), ("a shot of whiskey with X", ["alcohol"]),
    ("drinking plenty of water with X", []),  # water is not alcohol
    ("酒石酸美托洛尔怎么吃", []),  # tartrate, not wine
    ("what is X used for", []),
])
def test_substances_named_in_a_question(text: str, keys: list[str]) -> None:
    assert substances(text) == keys


def test_an_excipient_or_a_supplemental_dose_is_not_the_substance() -> None:
    alcohol, sup = BY_KEY["alcohol"].passage, BY_KEY["supplements"].passage
    assert not alcohol.search("other products containing benzyl alcohol or other excipients")
    assert not alcohol.search("an alcohol-free solution") and not alcohol.search("酒石酸美托洛尔片")
    assert alcohol.search("Avoid alcohol while taking this drug") and alcohol.search("服药期间忌酒")
    assert not sup.search("a supplemental dose of topiramate may be required")
    assert not sup.search("1,25-dihydroxyvitamin D") and sup.search("vitamin K antagonists")
    assert not BY_KEY["food"].passage.search("the U.S. Food and Drug Administration")


@pytest.mark.parametrize(("q", "probs", "intent"), [
    ("X with beer?", {"interaction": 0.3, "warnings": 0.05, "lactation": 0.25}, "substance"),
    ("does X interact with alcohol", {"interaction": 0.6, "warnings": 0.4}, "substance"),
    ("X和保健品一起吃有影响吗", {"interaction": 0.7, "warnings": 0.3}, "substance"),
    ("X和酒有相互作用吗", {"interaction": 0.7, "indications": 0.3}, "substance"),  # 相互作用 is not "what for"
    ("can I take X with food?", {"dosage": 0.5, "interaction": 0.5}, "dosage"),  # how to take it
    ("does X contain alcohol?", {"ingredients": 0.6, "warnings": 0.4}, "ingredients"),
    ("X with milk?", {"lactation": 0.7, "dosage": 0.1, "warnings": 0.2}, "dosage"),
    # the substance as what the drug treats: a question about its use
    ("does X help you quit smoking?", {"indications": 0.4, "interaction": 0.35, "warnings": 0.25}, "indications"),
    ("X for alcohol withdrawal", {"indications": 0.4, "interaction": 0.35, "warnings": 0.25}, "indications"),
    ("X能帮助戒烟吗", {"indications": 0.4, "interaction": 0.35, "warnings": 0.25}, "indications"),
])
def test_one_drug_and_a_substance_is_a_substance_question(q: str, probs: dict[str, float], intent: str) -> None:
    rt = route(q, n_drugs=1, probs=probs)
    assert rt.intent == intent, (q, rt.intent)
    if intent == "substance":
        assert rt.sections[:2] == ["interactions", "warnings"] and rt.soft


def test_a_substance_named_only_in_background_is_not_what_is_asked() -> None:
    # probe34 (helper-written, tuning half): a broken office coffee machine in the preamble routed a side-effect
    # question to the label's interactions
    probs = {"adverse_reactions": 0.5, "interaction": 0.3, "warnings": 0.2}
    q = ("Started a new job, the office coffee machine is broken and my landlord hasn't fixed the heating; I began X "
         "last Tuesday and feel a bit off. What side effects is it known for?")
    assert route(q, n_drugs=1, probs=probs).intent == "adverse_reactions"
    # a substance the asker says they take, or asks about, in any sentence is still the question
    for q in ("I'm on X. I drink a glass of wine every night. Is that a problem?", "I'm on X. Wine?",
              "Got a new job and started X. Coffee ok?", "我在吃X。平时爱喝咖啡。有影响吗？", "我在吃X。酒精有影响",
              "Started X yesterday. What about grapefruit juice."):
        assert route(q, n_drugs=1, probs=probs).intent == "substance", q


def test_two_drugs_and_alcohol_stay_a_drug_pair_question() -> None:
    assert route("X and Z with wine", n_drugs=2, probs={"interaction": 0.5, "warnings": 0.5}).intent == "interaction"
    assert route("X with beer?", n_drugs=1).intent == "substance"  # exact cues alone (no classifier)


@pytest.mark.parametrize(("q", "intent"), [
    ("用 X 的时候哪些药不能碰", "interaction"),
    ("drugs that clash with X", "interaction"),
    ("what medicines should not be combined with X", "interaction"),
    ("is X meant for anxiety or for sleep?", "indications"),
    ("家里翻出来一盒 X ，这药是干嘛用的", "indications"),
    ("X 要怎么存放", "storage"),
    ("is there gluten in X?", "ingredients"),
    ("what's in X, any alcohol?", "ingredients"),  # and so not a substance question
    ("X含防腐剂吗", "ingredients"),
    ("I need to know what X is for before I take it", "indications"),
    ("X是哪类药，怎么起效的", "pharmacology"),
    ("How long does X stay in your system?", "pharmacology"),
    ("are there any medical conditions where X must never be used", "contraindications"),
    ("用了 X 以后拉肚子是药的原因吗", "adverse_reactions"),  # a symptom put down to the drug
    ("吃了 X 头晕恶心正常吗", "adverse_reactions"),
    ("I have been dizzy since starting X, is that normal?", "adverse_reactions"),
])

def test_everyday_words_for_an_aspect_are_cues(q: str, intent: str) -> None:
    assert intent in cues(q), (q, cues(q))


def test_allergens_asked_in_chinese_are_ingredient_cues() -> None:
    # probe36 (tuning half): "我乳糖不耐受，X里有没有乳糖？" went to lactation (乳), "X含不含色素或者麸质" nowhere
    for q in ("我乳糖不耐受，X里有没有乳糖？", "X含不含色素或者麸质？", "X胶囊壳是明胶的吗"):
        assert "ingredients" in cues(q), q
    assert "lactation" not in populations("我乳糖不耐受，X里有没有乳糖？")


def test_a_retracted_question_is_routed_by_what_follows() -> None:
    # probe36 (tuning half): "What are the side effects of — sorry, scratch that — who is not permitted to take X"
    assert after_retraction("What are the side effects of — sorry, scratch that — who is not permitted to take X?") \
        == "who is not permitted to take X"
    assert after_retraction("X的副作用，不对，说错了，我是想问孕妇能不能用") == "我是想问孕妇能不能用"
    assert after_retraction("what I really wanted to ask is whether X is safe for kids") == "whether X is safe for kids"
    # what is not asked, in a clause of its own (probe23, tuning half: "我唔問劑量，淨係想知用X有咩要特別注意？" was
    # routed to dosage)
    assert after_retraction("我不问剂量，净是想知用X有什么要特别注意？") == "净是想知用X有什么要特别注意"
    assert after_retraction("不是问副作用，是想知道X哪些人不能吃") == "是想知道X哪些人不能吃"
    assert after_retraction("Not asking how to take it, just what side effects people get from X.") == \
        "just what side effects people get from X"
    assert after_retraction("I'm not asking you to change anything, I just want to understand X") is None
    # no retraction: the words do not end a clause, or nothing of its own follows (review of this change)
    for q in ("is X safe in pregnancy my midwife said to ignore that old advice about it",
              "can X make you forget that you already took it", "阿莫西林能和布洛芬一起吃吗 药店的人说错了好几次",
              "never mind.", "what is X for", "X说错了吗"):
        assert after_retraction(q) is None, q


def test_is_it_normal_to_take_is_not_a_side_effect_question() -> None:
    assert "adverse_reactions" not in cues("is it normal to take X twice a day")


def test_interaction_is_not_an_indications_cue() -> None:
    assert "indications" not in cues("X和酒有相互作用吗") and "interaction" in cues("X和酒有相互作用吗")
    assert "indications" in cues("X有什么作用")


def test_a_chinese_class_word_is_not_the_product_named_like_it() -> None:
    lk = EntityLinker([("cevimeline", "Cevimeline"), ("消炎", "消炎片"), ("morphine", "Morphine")], [],
                      {"cevimeline": ["c-1"], "morphine": ["m-1"]},
                      zh_en={"西维美林": "cevimeline", "吗啡": "morphine"})
    assert [x.id for x in lk.link("西维美林是消炎药吗，治什么的").drugs] == ["cevimeline"]
    assert [x.id for x in lk.link("吗啡药物过量").drugs] == ["morphine"]  # a drug's own name before 药物
    assert [x.id for x in lk.link("消炎片怎么吃").drugs] == ["消炎"]  # the product by its own name


def test_supplements_beside_a_known_drug_are_not_an_unknown_drug() -> None:
    lk = EntityLinker([("topiramate", "Topiramate")], [], {"topiramate": ["t-1"]}, zh_en={"托吡酯": "topiramate"})
    for q in ("托吡酯和保健品一起吃有影响吗", "托吡酯和维生素能一起吃吗", "托吡酯跟鱼油同时吃可以吗"):
        res = lk.link(q)
        assert [x.id for x in res.drugs] == ["topiramate"] and res.unlinked == [], (q, res.unlinked)
    assert lk.link("吃了头孢期间可以喝酒吗").unlinked == ["头孢"]  # 期间 is not part of the name


def test_a_list_item_is_quoted_with_its_lead_in() -> None:
    text = ("Risk factors for GI bleeding include: longer duration of NSAID therapy; smoking; use of alcohol; "
            "older age. Other text follows here.")
    a = text.index("use of alcohol")
    a2, b2 = _with_lead_in(text, a, a + len("use of alcohol;"))
    assert b2 == a + len("use of alcohol;") and text[a2:b2].startswith(("Risk factors", "longer", "smoking"))
    assert b2 - a2 >= len("use of alcohol;")


@pytest.mark.parametrize("q", ["我要续方，氨氯地平，一个月的量", "我想续药，帮我弄一下",
                               "Generate a prescription note: amoxicillin 500 mg three times a day"])
def test_renewal_and_prescription_note_requests_are_exact_requests(q: str) -> None:
    assert asks_to_prescribe(q)


@pytest.mark.parametrize("q", ["医生说我要续方，氨氯地平怎么吃", "续方需要带什么材料",
                               "what does the prescription note mean"])
def test_reports_and_questions_about_renewals_are_not_requests(q: str) -> None:
    assert not asks_to_prescribe(q)


def test_a_name_linked_twice_in_two_cases_is_named_once() -> None:
    from rag.answer.extractive import _names
    from rag.core.types import Evidence, LinkedEntity

    linked = [LinkedEntity(id="metformin", type="Drug", name=n, matched="二甲双胍")
              for n in ("Metformin", "metformin", "盐酸二甲双胍片")]
    assert _names(Evidence("二甲双胍有哪些禁忌", "zh", "contraindications", [], linked)) == "Metformin、盐酸二甲双胍片"
    assert _names(Evidence("metformin?", "en", "general", [], linked[:2])) == "Metformin"


def test_a_chinese_stem_that_names_a_class_lists_its_drugs() -> None:
    lk = EntityLinker([("cefuroxime", "Cefuroxime"), ("cephalexin", "Cephalexin"), ("头孢克肟片", "头孢克肟片"),
                       ("ibuprofen", "Ibuprofen")], [], {"cefuroxime": ["c-1"], "cephalexin": ["c-2"]},
                      zh_en={"头孢呋辛": "cefuroxime", "头孢氨苄": "cephalexin"})
    res = lk.link("吃头孢期间能喝酒吗")
    assert res.unlinked == ["头孢"] and not res.drugs
    # the drugs with a label first (shortest, then by name), then the graph-only product
    assert lk.prefix_candidates("头孢") == ["Cefuroxime", "Cephalexin", "头孢克肟片"]
    assert lk.prefix_candidates("头") == [] and lk.prefix_candidates("头孢克肟片") == []  # too short; a whole name
    assert lk.prefix_candidates("ceph") == []  # latin: whole words only ("insulin" → "insulin glargine")


def test_a_chinese_class_stem_is_a_clarifying_question(hash_service) -> None:
    ans = hash_service.ask("吃头孢期间能喝酒吗")  # the sample KB holds several cephalosporins
    assert ans.status == "needs_clarification" and "头孢" in ans.answer, ans.answer
    assert ans.follow_up_questions and not ans.citations


def test_english_cue_words_against_chinese_text_still_match() -> None:
    # Python's \b counts a Chinese character as a letter: without ASCII word boundaries "可以mix吗" has no "mix"
    from rag.retrieval.routing import _PAIR_WORDS, _WHICH_DRUGS

    assert _PAIR_WORDS.search("X和Z可以mix吗") and _WHICH_DRUGS.search("X和which drugs有冲突")


def test_safety_and_request_patterns_still_read_unusual_spaces() -> None:
    # review: ASCII-only \s would miss a no-break or ideographic space in the self-harm and request patterns
    from rag.retrieval.routing import asks_permission, asks_self_harm

    assert asks_self_harm("I want to kill\u00a0myself") and asks_self_harm("I want to kill\u3000myself")
    assert asks_permission("我长期吃 其他药 X 能吃吗 一天几片") == asks_permission("我长期吃其他药X能吃吗一天几片")
