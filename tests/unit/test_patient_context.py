"""Patient context, topics a label keeps inside another section, and Chinese approval numbers: the pure rules, then
the same behaviour through DrugService on the real sample KB (HashEmbedder, real stores, real label text)."""

from __future__ import annotations

import re

import pytest

from kb_loaders.cn_inserts import load_cn_inserts
from rag.core.text import read_chinese
from rag.retrieval.context import BY_KEY, ages, background_mentions, gives_context, populations
from rag.retrieval.linking import EntityLinker
from rag.retrieval.routing import cues, route


@pytest.mark.parametrize(("text", "keys"), [
    ("I'm 70, what dose of clozapine is right for me?", ["elderly"]),
    ("she is 4 and has a fever", ["child"]),
    ("he's 12", ["child"]),
    ("aged 81 years", ["elderly"]),
    ("I am 70 kg", []),  # a weight, not an age
    ("I'm 5 mg into the taper", []),
    ("I am 45", []),  # an adult: no population
    ("I'm 30 weeks pregnant", ["pregnancy"]),
    ("我妈妈82岁", ["elderly"]),
    ("I'm on hemodialysis three times a week", ["renal"]),  # not only "dialysis" as a word of its own
    ("uremic, on peritoneal dialysis", ["renal"]),
    ("我肌酐偏高", ["renal"]),
    ("尿毒症病人", ["renal"]),
    ("转氨酶高", ["hepatic"]),
    ("my liver enzymes are high", ["hepatic"]),
    ("my breastfed son", ["lactation", "child"]),
    ("I'm pumping for my newborn", ["lactation"]),  # the nursing baby, not a child who takes the drug
    ("my mother lives in a nursing home", []),  # a care home, not breastfeeding
    ("老爷子八十多了，X吃多少合适", ["elderly"]),  # tens of years without 岁
    ("我妈妈七十了", ["elderly"]),
    ("我奶奶在吃X", ["elderly"]),
    ("吃了三天了还不好", []),  # days, not an age
    ("can I take X while I'm still feeding my 6-week-old?", ["lactation"]),  # the nursing baby again
    ("my 3-week-old has a fever", ["child"]),  # an age in weeks or days is a baby
    ("宝宝20天大，能用X吗", ["child"]),
    ("I have been on X for 6 weeks", []),  # a duration, not an age
    ("I'm feeding my son lunch", ["child"]),  # a meal, not breastfeeding
    ("bottle feeding my baby", ["child"]),
    ("did anyone get headaches from X while expecting?", ["pregnancy"]),  # expecting a baby, unsaid
    ("when I was expecting my first I took X", ["pregnancy"]),
    ("is X safe for expectant mothers?", ["pregnancy"]),
    ("while expecting a call from the doctor I took X", []),
    ("eGFR只有25，吃X副作用会不会更大", ["renal"]),  # an English word against a Chinese character still ends there
    ("CKD患者能吃X吗", ["renal"]),
    ("Child-Pugh B, can I take X?", ["hepatic"]),  # a liver score, not a child
    ("肝功能Child-Pugh C级", ["hepatic"]),
])
def test_ages_and_contexts(text: str, keys: list[str]) -> None:
    assert populations(text) == keys


def test_breast_cancer_is_not_breastfeeding_text() -> None:
    lact = BY_KEY["lactation"].passage
    assert not lact.search("KADCYLA is indicated for HER2-positive metastatic breast cancer")
    assert lact.search("Advise women not to breastfeed during treatment")
    assert lact.search("It is not known whether the drug is excreted in human milk")


def test_a_second_asked_intent_decides_the_section_when_the_population_is_given_as_context() -> None:
    probs = {"pediatric": 0.79, "dosage": 0.21}
    assert route("X的用量", n_drugs=1, probs=probs, context=["child"]).intent == "dosage"
    # no child named and an exact word for the dose: a population guess with no word for it gives way
    assert route("X的用量", n_drugs=1, probs=probs).intent == "dosage"
    assert route("X对他怎么样", n_drugs=1, probs=probs).intent == "pediatric"  # no other word: the classifier's top
    only = {"pediatric": 0.97, "warnings": 0.03}  # "Is X safe for my toddler?": about the population itself
    assert route("is X safe for my toddler", n_drugs=1, probs=only, context=["child"]).intent == "pediatric"


def test_an_exact_cue_names_the_asked_intent_beside_a_given_population() -> None:
    # "哺乳期用X对宝宝有副作用吗": the classifier's top is the population; the exact "副作用" cue says what is asked,
    # however low the classifier puts it
    probs = {"lactation": 0.66, "adverse_reactions": 0.16, "indications": 0.18}
    assert route("哺乳期用X对宝宝有副作用吗", n_drugs=1, probs=probs, context=["lactation", "child"]).intent == \
        "adverse_reactions"
    assert route("哺乳期用X对宝宝有什么影响", n_drugs=1, probs=probs, context=["lactation"]).intent == "lactation"


def test_english_cues_inside_chinese_text_are_read() -> None:
    assert "substance" in cues("X和alcohol能一起吗")  # 中英夹杂: no space between the two scripts


def test_contraindications_is_no_indication_cue_and_illnesses_is() -> None:
    assert cues("what are the contraindications of X") == ["contraindications"]
    assert "indications" in cues("For what illnesses is X given to old people?")


def test_side_effect_is_not_an_indication_cue() -> None:
    assert "indications" not in cues("X有什么副作用") and "adverse_reactions" in cues("X有什么副作用")
    assert "indications" in cues("X有什么作用")


def test_one_drug_and_the_patients_condition_is_not_an_interaction_question() -> None:
    probs = {"interaction": 0.5, "contraindications": 0.3, "warnings": 0.2}
    q = "stage 4 kidney disease - should I stay away from X?"
    assert route(q, n_drugs=1, probs=probs, context=["renal"]).intent == "contraindications"
    assert route(q, n_drugs=1, probs=probs).intent == "interaction"  # no condition given: "things to avoid on X"
    assert route("kidney disease: does X interact with anything?", n_drugs=1, probs=probs,
                 context=["renal"]).intent == "interaction"  # asked in so many words


def test_one_drug_and_an_exact_word_for_another_intent_is_that_intent() -> None:
    # the classifier's near-ties on "X with beer?" / "X and alcohol" / "X with milk?" (measured: interaction 0.29,
    # warnings 0.28; lactation 0.28 first) are decided by the exact word, not by which drug pair or population
    # the classifier half-guessed
    # (alcohol is a substance taken beside the drug: its label sentence wherever it is, tests/unit/test_substances.py)
    assert route("X with beer?", n_drugs=1, probs={"interaction": 0.3, "warnings": 0.05, "lactation": 0.25}
                 ).intent == "substance"
    assert route("X and alcohol", n_drugs=1, probs={"lactation": 0.38, "interaction": 0.38, "warnings": 0.02}
                 ).intent == "substance"
    assert route("X with milk?", n_drugs=1, probs={"lactation": 0.7, "dosage": 0.1, "warnings": 0.2}
                 ).intent == "dosage"
    # asked in so many words, or with no other word: the classifier's top stands
    assert route("X while breastfeeding with milk", n_drugs=1, probs={"lactation": 0.7, "dosage": 0.3}
                 ).intent == "lactation"
    assert route("anything to avoid on X?", n_drugs=1, probs={"interaction": 0.6, "warnings": 0.4}
                 ).intent == "interaction"


def test_dose_reduction_words_are_a_dosage_cue() -> None:
    probs = {"geriatric": 0.9, "warnings": 0.08, "dosage": 0.02}
    assert route("我妈妈82岁，吃X要减量吗？", n_drugs=1, probs=probs, context=["elderly"]).intent == "dosage"


def test_a_misspelt_multi_word_name_is_not_read_as_its_exact_first_word() -> None:
    lk = EntityLinker([("silver", "Silver"), ("sulfadiazine", "Sulfadiazine"),
                       ("silver sulfadiazine", "Silver Sulfadiazine")], [],
                      {"silver sulfadiazine": ["ssd-1"]})
    res = lk.link("孕期可以用silver sulfaddiazine吗")
    assert [(x.id, x.corrected) for x in res.drugs] == [("silver sulfadiazine", True)]
    res = lk.link("does silver interact with sulfadiazine")  # two exact names stay two drugs
    assert [x.id for x in res.drugs] == ["silver", "sulfadiazine"]
    assert [x.id for x in lk.link("silver sulfadiazine cream").drugs] == ["silver sulfadiazine"]


def test_a_multi_word_name_typed_without_its_spaces_is_that_name() -> None:
    lk = EntityLinker([("mexiletine", "Mexiletine Hydrochloride"), ("icosapent ethyl", "Icosapent Ethyl")], [],
                      {"mexiletine": ["mx-1"], "icosapent ethyl": ["ie-1"]})
    assert [x.id for x in lk.link("what is mexiletinehydrochloride for").drugs] == ["mexiletine"]
    res = lk.link("icosapentethl side effects")  # joined and misspelt: the misspelling search knows the joined form
    assert [(x.id, x.corrected) for x in res.drugs] == [("icosapent ethyl", True)]
    assert lk.link("what is mexiletinehydrochloride for").unlinked == []


@pytest.mark.parametrize("q", ["What is the blackbox warning for X?", "X black-box warning", "X black box"])
def test_black_box_spellings_route_to_the_boxed_warning(q: str) -> None:
    assert route(q, n_drugs=1).intent == "boxed_warning"


def test_insert_keeps_its_approval_number(data_dir) -> None:
    labels = {lab.id: lab for lab in load_cn_inserts(data_dir / "zh_inserts", limit=60).labels}
    assert labels["cn-val-1453"].aliases == ["国药准字Z37020095"]
    assert labels["cn-val-1378"].aliases == ["国药准字Z37020097"]  # the same product name, another maker


def test_linker_reads_approval_numbers_whole() -> None:
    lk = EntityLinker([("国药准字z37020095", "国药准字Z37020095")], [], {"国药准字z37020095": ["cn-val-1453"]})
    for q in ("国药准字Z37020095的用法用量是什么", "国药准字 z37020095 怎么吃"):
        res = lk.link(q)
        assert [x.label_ids for x in res.drugs] == [["cn-val-1453"]] and res.unlinked == []
    res = lk.link("国药准字Z99999999的用法用量")
    assert res.drugs == [] and res.unlinked == ["国药准字Z99999999"]


# -- through the service on the real sample KB ------------------------------------------------------------------

@pytest.fixture(scope="module")
def service(hash_service):
    return hash_service


def _quotes(ans) -> list[str]:
    return [c.quote for c in ans.citations if c.source == "label"]


def test_approval_number_answers_from_that_exact_insert(service) -> None:
    ans = service.ask("国药准字Z37020095的用法用量是什么")  # 艾附暖宫丸 has two inserts in the sample
    assert ans.status == "answered"
    assert {c.doc_id for c in ans.citations if c.source == "label"} == {"cn-val-1453"}
    assert ans.citations[0].section == "dosage" and "口服" in ans.citations[0].quote
    unknown = service.ask("国药准字Z99999999的用法用量")
    assert unknown.status == "insufficient_evidence" and "国药准字Z99999999" in unknown.answer
    assert not unknown.citations


def test_kidney_context_quotes_the_renal_sentence_beside_the_dose(service) -> None:
    ans = service.ask("I have chronic kidney disease, how much famotidine should I take?")
    assert ans.status == "answered" and ans.citations[0].section == "dosage"
    renal = re.compile(r"renal|kidney|creatinine clearance|dialysis", re.I)
    facts = [f for f in ans.facts if f.text.startswith("For kidney problems, the label says:")]
    assert facts, [f.text[:60] for f in ans.facts]
    cited = {c.id: c for c in ans.citations}
    assert renal.search(cited[facts[0].citations[0]].quote)
    assert all("adult or a child" not in q for q in ans.follow_up_questions)  # the context is already given


def test_a_label_silent_about_breastfeeding_says_so(service) -> None:
    ans = service.ask("I'm breastfeeding, can I take ropinirole?")  # the sample's ropinirole label never mentions it
    assert ans.status == "answered"
    assert "says nothing specific about breastfeeding" in ans.answer
    assert not any(BY_KEY["lactation"].passage.search(q) for q in _quotes(ans))


def test_a_topic_kept_inside_another_section_is_quoted_and_leads(service) -> None:
    ans = service.ask("What happens if I take too much sertraline?")  # no overdosage section; warnings mention it
    assert ans.status == "answered"
    facts = [f for f in ans.facts if f.text.startswith("On overdose, the label says:")]
    assert facts
    cited = {c.id: c for c in ans.citations}
    assert re.search("overdos", cited[facts[0].citations[0]].quote, re.I)
    assert "has no Overdosage section" in ans.answer and facts[0].text.split(": ", 1)[1][:60] in ans.answer


def test_a_common_brand_no_bundled_label_carries_reaches_its_generic(service) -> None:
    from rag.retrieval.linking import load_brands

    brands = load_brands()
    assert brands["tylenol"] == "acetaminophen" and brands["coumadin"] == "warfarin"
    lr = service.retriever.linker.link("what is tylenol for?")
    assert any(x.id == "acetaminophen" and x.label_ids for x in lr.drugs), lr
    assert lr.unlinked == []


def test_an_unknown_chinese_name_is_quoted_without_the_question_around_it() -> None:
    lk = EntityLinker([("naproxen", "Naproxen")], [], {"naproxen": ["n-1"]}, zh_en={"萘普生": "naproxen"})
    assert lk.link("吃了头孢可以喝酒吗").unlinked == ["头孢"]
    assert lk.link("氟哌酸对孩子安全吗").unlinked == ["氟哌酸"]
    assert lk.link("伤湿止痛膏怎么用").unlinked == ["伤湿止痛膏"]  # 伤 inside a name stays


def test_an_unknown_chinese_name_joined_to_a_known_one_is_unlinked() -> None:
    lk = EntityLinker([("ibuprofen", "Ibuprofen")], [], {"ibuprofen": ["i-1"]}, zh_en={"布洛芬": "ibuprofen"})
    for q in ("佐布拉汀和布洛芬能一起吃吗", "布洛芬与佐布拉汀有相互作用吗", "布洛芬、佐布拉汀可以同时用吗"):
        res = lk.link(q)
        assert [x.id for x in res.drugs] == ["ibuprofen"], q
        assert res.unlinked == ["佐布拉汀"], q
    # food, drink, a class of drugs, a pronoun or a question about dosing is not an unknown drug
    for q in ("布洛芬和酒能一起吗", "布洛芬和感冒药可以一起吃吗", "布洛芬跟牛奶一起吃吗", "布洛芬和别的药有冲突吗",
              "布洛芬和剂量有关吗"):
        assert lk.link(q).unlinked == [], q


def test_an_invented_product_of_common_characters_is_unlinked() -> None:
    # an invented name that splits into common words (左 + 西康, 布 + 洛宁) was read as ordinary text and the
    # question answered about the known drug alone; a category of medicines before a form (止痛片) or a form word
    # is no name
    lk = EntityLinker([("aspirin", "Aspirin"), ("metformin", "Metformin")], [],
                      {"aspirin": ["a-1"], "metformin": ["m-1"]},
                      zh_en={"阿司匹林": "aspirin", "二甲双胍": "metformin"})
    for q, name in (("我在吃左西康注射液，能和阿司匹林一起吃吗", "左西康注射液"),
                    ("我在吃布洛宁分散片，能和阿司匹林一起吃吗", "布洛宁分散片"),
                    ("Can I take 左西康注射液 with metformin?", "左西康注射液")):
        assert lk.link(q).unlinked == [name], q
    # a pill (丸) form, and a product at the start of the question (probe35, tuning half)
    for q, name in (("乌藤健骨丸是我上个月住院时开的，还一直在吃原来的metformin，两个有没有冲突？", "乌藤健骨丸"),):
        assert lk.link(q).unlinked == [name], q
    for q in ("早上吃了鱼丸，能吃阿司匹林吗", "阿司匹林吃了两丸还能吃吗"):
        assert lk.link(q).unlinked == [], q
    for q in ("我在吃止痛片，能和阿司匹林一起吃吗", "二甲双胍缓释片和阿司匹林肠溶片能一起吃吗",
              "阿司匹林一天吃两片还是三片", "用了阿司匹林身上起了一片片红疹子，跟这药有关系不"):
        assert lk.link(q).unlinked == [], q


def test_an_invented_product_is_not_a_known_one_inside_it() -> None:
    # my own invented-name check (fourteenth session): 润肺清咽口服液 was answered as the KB's 清咽片 (its name less the
    # form, inside the longer name), and 泰美司他片 was no name at all (他, a pronoun, inside it)
    lk = EntityLinker([("ibuprofen", "Ibuprofen"), ("清咽片", "清咽片")], [], {"ibuprofen": ["i-1"], "清咽片": ["q-1"]},
                      zh_en={"布洛芬": "ibuprofen"})
    for q, name in (("润肺清咽口服液和布洛芬能一起吃吗", "润肺清咽口服液"),
                    ("泰美司他片和布洛芬能一起吃吗", "泰美司他片"),
                    ("我在吃布洛芬，医生又开了泰美司他片，有冲突吗", "泰美司他片")):
        res = lk.link(q)
        assert "清咽片" not in [x.id for x in res.drugs] and res.unlinked == [name], (q, res)
    for q in ("我在吃清咽片，能和布洛芬一起吃吗", "孩子咽喉痛用清咽片可以吗", "清咽片和他的布洛芬能一起吃吗",
              "请问清咽含片和布洛芬能一起吃吗"):
        res = lk.link(q)
        assert "清咽片" in [x.id for x in res.drugs] and res.unlinked == [], (q, res)


def test_a_misspelt_negation_is_no_unknown_drug_name() -> None:
    # probe34 (tuning half): "shoudn't" left "shoudn" as an unknown drug, and the question about ulipristal was
    # answered "no drug named shoudn"
    lk = EntityLinker([("ulipristal", "Ulipristal")], [], {"ulipristal": ["u-1"]})
    for q in ("which drugs shoudn't be combined with ulipristal?", "i cudn't find what ulipristal interacts with"):
        res = lk.link(q)
        assert [x.id for x in res.drugs] == ["ulipristal"] and res.unlinked == [], (q, res)
    assert lk.link("can i take ulipristal with zorvaxin?").unlinked == ["zorvaxin"]
    assert lk.link("ulipristal and zorvaxin t.i.d., ok?").unlinked == ["zorvaxin"]  # t.i.d. is no "n't"


def test_chat_slang_and_a_chinese_clause_are_no_unknown_names() -> None:
    # probe37 (tuning half): "阿托伐他汀的side effect多不多？yyds还是踩雷？" was answered "no drug named yyds, 还是踩雷"
    lk = EntityLinker([("atorvastatin", "Atorvastatin")], [], {"atorvastatin": ["a-1"]},
                      zh_en={"阿托伐他汀": "atorvastatin"})
    for q in ("阿托伐他汀的side effect多不多？yyds还是踩雷？", "atorvastatin side effects smh, xswl 到底大不大",
              "u1s1 阿托伐他汀的dose是多少呢"):
        res = lk.link(q)
        assert [x.id for x in res.drugs] == ["atorvastatin"] and res.unlinked == [], (q, res)
    assert lk.link("can I take atorvastatin with zorvaxin?").unlinked == ["zorvaxin"]
    assert lk.link("DDI atorvastatin 璎钶苒桐?").unlinked == ["璎钶苒桐"]


def test_an_invented_name_in_a_medication_table_is_unlinked() -> None:
    # probe38 (tuning half): in "| 璟昀滴丸 | 10 mg | | Miglitol | 5 mg |" the linked name was matched as its words
    # ("miglitol 5") and not found again across the table's bars, so nothing around it was read: answered as miglitol
    lk = EntityLinker([("miglitol", "Miglitol"), ("miglitol", "Miglitol 25 mg")], [], {"miglitol": ["m-1"]})
    for q in ("| Drug | Dose |\n|---|---|\n| 璟昀滴丸 | 10 mg |\n| Miglitol | 5 mg |\nsafe combo?",
              "Miglitol,5 mg;璟昀滴丸,10 mg — any interaction?"):
        assert lk.link(q).unlinked == ["璟昀滴丸"], q


def test_an_invented_chinese_name_in_an_english_question_or_after_plus_is_unlinked() -> None:
    # probe21 (helper-written): "DDI X 璎钶苒桐?" and "璎钶苒桐 + X ok?" were answered about X alone
    lk = EntityLinker([("warfarin", "Warfarin"), ("belatacept", "Belatacept")], [],
                      {"warfarin": ["w-1"], "belatacept": ["b-1"]})
    for q in ("DDI warfarin 璎钶苒桐?", "pls tell me if 璎钶苒桐 + warfarin is ok 2 take 2gether",
              "is warfarin/曦茗琥棠 a bad combo"):
        res = lk.link(q)
        assert [x.id for x in res.drugs] == ["warfarin"] and len(res.unlinked) == 1, (q, res)
    assert lk.link(read_chinese("Belatacept同埋曦茗琥棠可唔可以一齐食？")).unlinked == ["曦茗琥棠"]
    # ordinary Chinese words in an English question (wordfreq's Chinese list), the patient's situation, and a
    # Chinese question with a long Latin name are not unknown names
    for q in ("my mom takes warfarin 早上 and again at night", "warfarin 肌酐清除率 30, dose?", "warfarin in 孕早期?",
              "warfarin 饭后半小时 ok? 谢谢", "误吃太多warfarin要怎么急救", "这个WARFARIN一次整几片嘛",
              "给个处方呗，warfarin 5mg"):
        assert lk.link(q).unlinked == [], q


def test_a_salt_word_that_begins_another_drug_is_not_swallowed_as_a_salt() -> None:
    lk = EntityLinker([("lisinopril", "Lisinopril"), ("potassium chloride", "Potassium Chloride"),
                       ("losartan potassium", "Losartan Potassium"), ("spironolactone", "Spironolactone")], [],
                      {"lisinopril": ["l-1"], "losartan": ["lo-1"]})
    ids = [x.id for x in lk.link("lisinopril + potassium chloride + spironolactone").drugs]
    assert ids == ["lisinopril", "potassium chloride", "spironolactone"]
    assert [x.id for x in lk.link("lisinopril potassium dose").drugs] == ["lisinopril"]  # a salt form still
    got = [x.id for x in lk.link("losartan potassium and potassium chloride").drugs]
    assert got == ["losartan potassium", "potassium chloride"]


def test_an_unsure_population_intent_needs_a_word_for_that_population() -> None:
    probs = {"lactation": 0.38, "warnings": 0.27, "interaction": 0.23, "ingredients": 0.12}
    assert route("is X risky?", n_drugs=1, probs=probs).intent == "warnings"  # no word for breastfeeding
    assert route("X and alcohol", n_drugs=1, probs=probs).intent == "substance"  # alcohol, not breastfeeding
    said = {"lactation": 0.45, "pregnancy": 0.4, "warnings": 0.15}
    assert route("X while breastfeeding", n_drugs=1, probs=said, context=["lactation"]).intent == "lactation"
    sure = {"pregnancy": 0.89, "pediatric": 0.09, "warnings": 0.02}
    assert route("is X ok for my unborn baby", n_drugs=1, probs=sure).intent == "pregnancy"  # the model is sure


def test_administration_words_are_dosage_cues() -> None:
    for q in ("does X need to be taken on an empty stomach", "X with food or not", "X饭前还是饭后吃", "X要空腹吃吗"):
        assert "dosage" in cues(q), q


@pytest.mark.parametrize(("q", "cue"), [
    ("My dad is on a blood thinner and his doctor just added X. Is that combination a problem?", "interaction"),
    ("I take antidepressants, is X ok for me", "interaction"), ("is this combo ok: X and my statins", "interaction"),
    ("who is not supposed to take X at all?", "contraindications"), ("who must avoid X", "contraindications"),
    ("can I split X tablets", "dosage"), ("X能掰开吃吗", "dosage"), ("should X be swallowed whole", "dosage")])
def test_drug_classes_taken_combinations_avoidance_and_administration_are_cued(q: str, cue: str) -> None:
    assert cue in cues(q), (q, cues(q))


@pytest.mark.parametrize("q", ["X is used with antibiotics for ulcers", "what is in the combination X tablet",
                               "does X dissolve blood clots"])
def test_words_near_those_cues_are_not_them(q: str) -> None:
    assert not {"interaction", "dosage"} & set(cues(q)), (q, cues(q))


def test_two_edits_at_a_names_start_are_a_question_not_a_correction() -> None:
    lk = EntityLinker([("bleomycin", "Bleomycin")], [], {"bleomycin": ["b-1"]})
    res = lk.link("what does Brelomycin treat")  # invented: two edits from Bleomycin, in its first letters
    assert res.drugs == [] and res.unlinked == ["brelomycin"] and "Bleomycin" in res.suggestions
    assert [x.id for x in lk.link("what does bleomicyn treat").drugs] == ["bleomycin"]  # two slips further on
    assert [x.id for x in lk.link("what does bleomycni treat").drugs] == ["bleomycin"]  # one slip


@pytest.mark.parametrize(("q", "key"), [
    ("I'm seventy-two, how much X", "elderly"), ("I'm in my 80s, X dose?", "elderly"),
    ("she's in her seventies, X dose", "elderly"), ("dose of X for a 70-something", "elderly"),
    ("X dose for my 3-month-old", "child"), ("my little one is 4, how much X", "child"), ("my son is 9", "child"),
    ("my wife is expecting, what dose of X", "pregnancy"), ("X dose, I'm 34 weeks along", "pregnancy"),
    ("X dose with stage 3 CKD", "renal"), ("我七十二岁，X吃多少", "elderly"), ("我70多岁了，X一次吃多少", "elderly"),
    ("我爸今年75，X一次几片", "elderly"), ("我妈80了，X吃多少", "elderly"), ("上了年纪的人X吃多少", "elderly"),
    ("孩子两岁X吃多少", "child"), ("宝宝三个月大X用量", "child"), ("坐月子期间X怎么吃", "lactation"),
    # probe36 (tuning half): a classical age, pumping milk at work
    ("退休老干部年逾古稀，服用X是否需要减量？", "elderly"), ("an octogenarian on X: dose?", "elderly"),
    ("I pump milk at work for my baby; should I adjust my dose of X?", "lactation"),
])
def test_ages_and_conditions_as_people_write_them_are_context(q, key) -> None:
    assert key in populations(q) and gives_context(q), q


@pytest.mark.parametrize("q", ["take one tablet of X twice a day?", "X 10 mg twice daily, is that right",
                               "X一个月吃几盒", "吃了两片X了，还能吃吗", "我已经吃了三天X了", "I took X at 8",
                               "my dog is 12, X dose", "X每天吃一次还是两次"])
def test_counts_doses_and_times_are_not_ages(q) -> None:
    assert not gives_context(q), q


def test_a_duration_in_years_is_no_age() -> None:
    # probe36 (tuning half): "a kidney transplant two years ago" made the asker a two-year-old child
    for q in ("I had a kidney transplant two years ago; how should X be dosed for me?", "been on X for 3 years",
              "over the past 5 years X has worked well", "X for 2 years of treatment"):
        assert ages(q) == [] and "child" not in populations(q), q
    assert ages("my son is 2 years old") == [(2, False)] and ages("she is 4 years") == [(4, False)]
    # review: a duration's second digit is no age either ("for 20 years" read as 0), and "over 65 years old" is 65
    assert ages("I have taken X for 20 years") == [] and ages("over the past 10 years") == []
    assert ages("I am over 65 years old") == [(65, False)] and populations("I am over 65 years old") == ["elderly"]


def test_a_weight_written_against_its_unit_is_context() -> None:
    assert gives_context("X dose for a 60kg woman") and gives_context("I weigh 50kg, X dose")
    assert ages("六十多岁的人X吃多少") == [(60, False)] and populations("六十多岁的人X吃多少") == []  # an age, under 65


def test_a_name_never_spans_chinese_text_or_starts_with_a_number() -> None:
    lk = EntityLinker([("omnipaque", "Omnipaque")], [], {"omnipaque": ["o-1"]})
    for q in ("我儿子8岁，omnipaque一次给多少", "my son is 8, omnipaque dose"):
        assert [(x.id, x.matched) for x in lk.link(q).drugs] == [("omnipaque", "omnipaque")], q  # not "8 omnipaque"


def test_an_unsure_population_intent_never_falls_back_to_a_drug_pair_question() -> None:
    # "我有肝硬化，能吃X吗": one drug, an unsure intent the question has no word for, no word for interactions
    probs = {"pediatric": 0.36, "interaction": 0.18, "contraindications": 0.15, "pregnancy": 0.1, "dosage": 0.07}
    assert route("我有 Y 能吃 X 吗", n_drugs=1, n_diseases=1, probs=probs, context=["hepatic"]).intent == \
        "contraindications"
    # without a condition, an unsure population guess still gives way to the drug-pair intent ("what not to mix X
    # with")
    assert route("what not to mix X with", n_drugs=1, probs=probs).intent == "interaction"


@pytest.mark.parametrize("intent", ["pregnancy", "lactation", "pediatric", "geriatric"])
def test_a_population_question_reads_the_contraindications_next(intent: str) -> None:
    r = route("X", n_drugs=1, probs={intent: 0.9, "indications": 0.1}, context=[])
    assert r.sections[:2] == [intent, "contraindications"], r.sections


@pytest.mark.parametrize("q", ["how should X be given to an adult", "how is it administered", "X有什么不良反应",
                               "吃了X会有什么反应"])
def test_administration_and_reaction_wordings_are_cued(q: str) -> None:
    assert set(cues(q)) & {"dosage", "adverse_reactions"}, q


def test_with_patient_context_an_exact_word_for_the_aspect_decides() -> None:
    # the condition pulls the classifier towards safety; "how much" says the question is about the dose
    probs = {"contraindications": 0.57, "dosage": 0.39, "warnings": 0.04}
    q = "i have chronic kidney disease how much X can i take"
    assert route(q, n_drugs=1, probs=probs, context=["renal"]).intent == "dosage"
    assert route(q.replace("how much", "may"), n_drugs=1, probs=probs, context=["renal"]).intent == \
        "contraindications"  # no word for another aspect: the classifier decides


def test_a_safety_question_reads_the_boxed_warning_and_the_contraindications_after_the_warnings() -> None:
    assert route("X", n_drugs=1, probs={"warnings": 0.9, "dosage": 0.1}).sections == ["warnings", "boxed_warning",
                                                                                       "contraindications"]


@pytest.mark.parametrize(("q", "intent"), [
    ("X CI?", "contraindications"), ("X ADRs", "adverse_reactions"), ("X AEs in trials", "adverse_reactions"),
    ("X DDIs", "interaction"), ("is there a BBW on X", "boxed_warning"),
    ("does X carry a box warning", "boxed_warning"),
    ("untoward effects of X", "adverse_reactions"), ("is X off limits for me", "contraindications"),
    ("X有啥讲究", "warnings"), ("哪类人碰不得X", "contraindications"),
])
def test_clinician_shorthand_and_colloquial_section_words_are_cued(q: str, intent: str) -> None:
    assert intent in cues(q), (q, cues(q))


def test_shorthand_cues_are_whole_words_and_accidents_are_not_cautions() -> None:
    assert "contraindications" not in cues("X for acid reflux, circle one")
    assert "contraindications" not in cues("what does X do for circulation")
    assert "warnings" not in cues("不小心吃多了X怎么办")


@pytest.mark.parametrize("q", ["is it ok to nurse my baby while on X",
                               "still breastfeeding my 4 month old, can I take X",
                               "can X harm my baby through breast milk", "喂奶的时候用X，宝宝会有什么反应",
                               "pregnant - will X hurt the baby?"])
def test_the_baby_of_a_nursing_or_pregnant_mother_is_not_a_child_patient(q: str) -> None:
    found = populations(q)
    assert "child" not in found and ({"lactation", "pregnancy"} & set(found)), found


def test_a_child_named_beside_a_nursing_mother_is_still_a_child() -> None:
    assert populations("breastfeeding; can my 3 year old take X") == ["lactation", "child"]
    assert populations("my baby is 6 months, dose of X") == ["child"]


def test_child_pugh_is_not_a_passage_about_children() -> None:
    assert not BY_KEY["child"].passage.search("mild to moderate hepatic impairment (Child-Pugh Classification A and B)")
    assert BY_KEY["child"].passage.search("Safety in children below 6 years has not been established")


@pytest.mark.parametrize("text", ["俺爹快八十了，吃X得注意点啥不", "婆婆七十多了", "她80了"])
def test_more_family_words_before_a_chinese_age(text: str) -> None:
    assert populations(text) == ["elderly"], text


def test_a_count_of_tablets_is_no_age() -> None:
    assert ages("他吃了30片了") == [] and ages("我妈吃了2片了") == []


def test_a_rash_asked_about_as_linked_to_the_drug_is_a_side_effect_question() -> None:
    assert "adverse_reactions" in cues("用了X身上起了一片片红疹子，跟这药有关系不")


def test_this_drug_as_the_cause_is_a_side_effect_cue() -> None:
    assert "adverse_reactions" in cues("吃了X以后身上起疹子，是这个药引起的吗")


@pytest.mark.parametrize(("text", "key"), [
    ("my grandson is sick", "child"), ("dose for a neonate", "child"), ("adolescents", "child"),
    ("my little girl has a cough", "child"), ("我家娃发烧了", "child"), ("小朋友能吃吗", "child"), ("新生儿", "child"),
    ("早产儿", "child"), ("青少年", "child"), ("初中生", "child"), ("pensioner here", "elderly"),
    ("aged care resident", "elderly"), ("a man over 70 taking X", "elderly"), ("hepatically impaired", "hepatic"),
    ("mom-to-be", "pregnancy"), ("we're TTC", "pregnancy"), ("怀二胎", "pregnancy"),
])
def test_more_population_words(text: str, key: str) -> None:
    assert key in populations(text), (text, populations(text))


@pytest.mark.parametrize("text", ["over 80 mg a day", "heart rate over 90 bpm", "over 70 kg"])
def test_over_a_number_with_a_unit_is_no_age(text: str) -> None:
    assert populations(text) == []


@pytest.mark.parametrize("q", ["X isn't safe with blood thinners, right?", "X and antacids", "can I take X with my "
                               "blood pressure meds", "X plus antidepressants?"])
def test_a_class_of_drugs_beside_it_is_an_interaction_cue(q: str) -> None:
    assert "interaction" in cues(q), (q, cues(q))


def test_a_combination_the_drug_is_used_in_is_no_interaction_cue() -> None:
    assert "interaction" not in cues("is X used with antibiotics for ulcers")


def test_shorthand_and_plain_words_for_overdose_storage_mechanism_and_older_patients() -> None:
    # probe22 (helper-written): "MoA? t1/2?" went to dosage, "accidently took my X twice" to side effects, "does it
    # need to stay cold" / "still good a month after I opened it" to dosage, "geri pts" gave no patient context
    assert "pharmacology" in cues("X MoA? t1/2?")
    assert "overdosage" in cues("accidently took my X twice this morning am i gonna be ok")
    assert "overdosage" not in cues("I took X twice a day for a week, is that right?")
    assert "storage" in cues("can i take X on the plane or does it need to stay cold")
    assert "storage" in cues("is X still good to use a month after I opened it")
    assert "storage" in cues("夏天带X出门，怕不怕热？要避光吗")
    assert populations("X in geri pts: any special precautions?") == ["elderly"]
    assert "geriatric" in cues("X in geri pts: any special precautions?")


@pytest.mark.parametrize(("text", "mentions", "taken"), [
    ("I'm already on metformin, what is naproxen used for?", ["metformin", "naproxen"], {"metformin"}),
    ("my mum takes warfarin; what are the side effects of omeprazole?", ["warfarin", "omeprazole"], {"warfarin"}),
    ("I take 81 mg aspirin daily, what is omeprazole for", ["aspirin", "omeprazole"], {"aspirin"}),
    ("我平时吃二甲双胍，布洛芬的用法用量是什么", ["二甲双胍", "布洛芬"], {"二甲双胍"}),
    ("正在服用华法林的人能吃布洛芬吗", ["华法林", "布洛芬"], {"华法林"}),
    ("can I take naproxen with metformin", ["naproxen", "metformin"], set()),  # asked about, not already taken
    ("should I take naproxen or metformin?", ["naproxen", "metformin"], set()),
    ("naproxen和二甲双胍能一起吃吗", ["naproxen", "二甲双胍"], set()),
])
def test_a_drug_named_as_already_taken_is_background(text, mentions, taken):
    assert background_mentions(text, mentions) == taken


def test_the_broad_take_with_cue_is_no_drug_pair_beside_a_food_word() -> None:
    # "can I take my prescribed X with milk?" (measured, fused with the cue bonus: lactation 0.50, interaction 0.25,
    # dosage 0.22; cues: the broad "take … with" interaction cue and the dosage food cue): one drug and a food is
    # how to take it, not a drug pair, though interaction ranks above dosage
    probs = {"lactation": 0.845, "interaction": 0.075, "dosage": 0.017, "pregnancy": 0.037}
    assert route("short one can i take my prescribed X with milk", n_drugs=1, probs=probs).intent == "dosage"
    # the overdose guess beside a dose word and no overdose word is a dosage question
    assert route("I missed a dose of X, what should I do?", n_drugs=1,
                 probs={"overdosage": 0.9, "dosage": 0.05, "warnings": 0.05}).intent == "dosage"


@pytest.mark.parametrize(("masked", "intent"), [
    ("who can t take X", "contraindications"),  # the masked question has no apostrophes left
    ("X who shouldn t take it", "contraindications"),
    ("which conditions mean you absolutely can t be given it X", "contraindications"),
    ("what s in X", "ingredients"),
    ("what it s for X", "indications"),
])
def test_cue_phrases_with_apostrophes_match_the_masked_question(masked: str, intent: str) -> None:
    assert intent in cues(masked)


@pytest.mark.parametrize(("text", "key"), [
    ("Nan's 91 and on nine tablets a day, is X one older folks shouldn't take?", "elderly"),
    ("my gran is on X", "elderly"),
    ("is X ok for older ladies", "elderly"),
    ("在背奶的宝妈，X一天吃多少", "lactation"),  # pumping at work
    ("吸奶期间能用X吗", "lactation"),
    ("X and toddlers: what precautions should parents know?", "child"),  # a plural
])
def test_more_words_for_older_people_and_pumping_mothers(text: str, key: str) -> None:
    assert key in populations(text)


def test_nan_and_naan_are_not_grandmothers() -> None:
    assert populations("nan values in my data with X") == [] and populations("naan bread with X") == []


def test_a_misspelt_name_with_suggestions_is_masked_only_when_no_drug_is_known() -> None:
    from rag.retrieval.linking import Link, LinkResult
    from rag.retrieval.retriever import mask_mentions

    # "Drug: nlutamide" (flutamide or nilutamide?) read as an order form with the word left in: 0.48, refused;
    # masked as a name, 0.11 (the request classifier reads the masked question)
    alone = LinkResult([], [], ["Flutamide", "Nilutamide"], ["nlutamide"])
    assert mask_mentions("Option 2: Dosage & how to take. Drug: nlutamide", alone) == \
        "option 2 dosage how to take drug X"
    known = Link(type="Drug", id="d1", name="Naproxen", matched="naproxen")
    beside = LinkResult([known], [], ["Flutamide"], ["sideefects"])
    assert mask_mentions("naproxen sideefects", beside) == "X sideefects"


def test_a_second_name_of_a_linked_drug_is_masked_with_the_same_placeholder() -> None:
    # rx_probe22 (tuning half): in "What's the label dose for Aleve (naproxen sodium)?" the generic name in brackets
    # was left in the text the router and the request classifier read, and in the classifier's examples
    from rag.retrieval.retriever import mask_mentions

    lk = EntityLinker([("naproxen", "Naproxen Sodium"), ("naproxen", "Aleve"), ("warfarin", "Warfarin")], [],
                      {"naproxen": ["n-1"], "warfarin": ["w-1"]})
    q = "What's the label dose for Aleve (naproxen sodium)? I also take warfarin"
    res = lk.link(q)
    assert [x.id for x in res.drugs] == ["naproxen", "warfarin"]
    assert mask_mentions(q, res) == "what s the label dose for X X i also take Z"


@pytest.mark.parametrize("q", ["我以为萘普生跟啥都能一块儿吃，其实有哪些要避开？", "萘普生跟任何东西都能一起吃吗",
                               "萘普生和所有药都不冲突吗"])
def test_anything_joined_to_a_known_drug_is_no_unknown_drug(q: str) -> None:
    # "跟啥都能一块儿吃" (goes with anything): 啥都 was taken for an unknown partner drug, and the question about
    # mecamylamine's interactions answered "no drug 啥都 in the knowledge base"
    lk = EntityLinker([("naproxen", "Naproxen")], [], {"naproxen": ["n-1"]}, zh_en={"萘普生": "naproxen"})
    assert lk.link(q).unlinked == []


def test_a_chinese_brand_name_reaches_its_generic() -> None:
    from rag.retrieval.linking import load_brands, load_zh_en

    brands = load_brands()
    assert brands["络活喜"] == "amlodipine" and brands["波立维"] == "clopidogrel"
    assert brands["tylenol"] == "acetaminophen"
    assert "安定" not in brands and "可定" not in brands  # ordinary words too ("情绪安定", "可定期")
    lk = EntityLinker([("amlodipine", "Amlodipine"), ("clopidogrel", "Clopidogrel"), ("aspirin", "Aspirin")], [],
                      {"amlodipine": ["a-1"], "clopidogrel": ["c-1"], "aspirin": ["s-1"]},
                      {**brands, **load_zh_en()})
    assert [x.id for x in lk.link("医生开的“络活喜”是什么成分？").drugs] == ["amlodipine"]
    lr = lk.link("波立维和阿司匹林能一起吃吗")
    assert {x.id for x in lr.drugs} == {"clopidogrel", "aspirin"} and lr.unlinked == []


def test_how_much_can_i_take_asks_the_dose_not_permission_beside_a_drug_taken() -> None:
    from rag.retrieval.routing import asks_permission

    assert not asks_permission("how many mg of X can i take in one day already on another medicine 20mg daily btw")
    assert not asks_permission("X一天最多能吃多少")
    assert asks_permission("i m on another medicine can i take X") and asks_permission("我在吃其他药 能吃X吗")
    # routed: the dose of X (0.99), the pair still checked by the retriever
    probs = {"dosage": 0.99, "interaction": 0.005, "adverse_reactions": 0.005}
    assert route("how many mg of X can I take in one day already on another medicine 20mg daily btw", n_drugs=2,
                 probs=probs, one_subject=True, text="how many mg of X can I take in one day — already on Z").intent \
        == "dosage"


def test_an_exact_word_beside_a_drug_taken_beats_a_placeholder_pulled_interaction() -> None:
    # "我长期服用Z，现在准备开始服用X，想请教一下哪些情况下是绝对不能使用这个药的": with Z read as "其他药" the
    # classifier said interaction (0.51 fused); 不能使用 is a contraindication word and no pair is asked
    q = "药师您好 我长期服用其他药 现在准备开始服用X 想请教一下哪些情况下是绝对不能使用这个药的"
    probs = {"interaction": 0.69, "contraindications": 0.17, "dosage": 0.04, "warnings": 0.1}
    assert route(q, n_drugs=2, probs=probs, one_subject=True, text=q).intent == "contraindications"
    # asked about the two together, it stays a pair question
    q2 = "我长期服用其他药 X能一起吃吗 哪些情况下不能使用"
    assert route(q2, n_drugs=2, probs=probs, one_subject=True, text=q2).intent == "interaction"


def test_review_cases_for_names_permission_and_ages() -> None:
    from rag.retrieval.linking import load_brands, load_zh_en
    from rag.retrieval.routing import asks_permission

    # a brand inside another name: 代文 (valsartan) is no brand of the table, 替代文拉法辛 is venlafaxine
    lk = EntityLinker([("venlafaxine", "Venlafaxine"), ("valsartan", "Valsartan"), ("duloxetine", "Duloxetine")], [],
                      {"venlafaxine": ["v-1"], "valsartan": ["s-1"], "duloxetine": ["d-1"]},
                      {**load_brands(), **load_zh_en()})
    assert "valsartan" not in {x.id for x in lk.link("度洛西汀可以替代文拉法辛吗").drugs}
    assert load_brands()["达菲林"] == "triptorelin"  # the longer brand wins over 达菲 (oseltamivir)
    # "不能吃" is no permission question; "能不能吃" and "can I take X when …" are
    assert not asks_permission("我长期服用其他药 哪些情况下不能吃这个药")
    assert asks_permission("我在吃其他药 X能不能吃")
    assert asks_permission("i take another medicine can i take X when i have a headache")
    assert "contraindications" not in cues("X能不能用")  # a permission question, not "who must not"
    assert populations("my nan's on X") == ["elderly"]
    assert "elderly" not in populations("I'm a 30-year-old woman on X") and "elderly" in populations("an old woman")
    assert "dosage" in cues("missed my wife s dose of X")


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", 'I found no drug named "nlutamide". Did you mean Flutamide or Nilutamide?'),
    ("zh", "知识库中没有“nlutamide”这个药名。您是指Flutamide还是Nilutamide？"),
])
def test_a_word_close_to_several_names_gets_did_you_mean_not_which_drug(lang: str, expected: str) -> None:
    # the policy asked "Which drug do you mean?" though the linker had the close names: it names them now, and
    # guesses none
    from rag.answer.policy import decide
    from rag.core.types import Evidence
    from rag.retrieval.linking import LinkResult
    from rag.retrieval.retriever import Retrieval
    from rag.retrieval.routing import Route

    lr = LinkResult([], [], ["Flutamide", "Nilutamide"], ["nlutamide"])
    ans = decide(Retrieval(Evidence("Drug: nlutamide. Dosage?", lang, "dosage", ["dosage"]), lr, Route("dosage", [])))
    assert ans is not None and ans.status == "needs_clarification" and ans.answer == expected
    assert len(ans.follow_up_questions) == 2 and not ans.citations
