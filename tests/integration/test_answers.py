"""Retrieval quality with the real multilingual embedder on the real sample KB: the dev questions whose labels are in
the sample, and cross-lingual answers. (Behaviour that does not depend on the embedder is in tests/unit.)"""

from __future__ import annotations

import re

import pytest

from kb_loaders.openfda import load_openfda
from kb_loaders.sections import openfda_section
from rag.answer.schema import Answer


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


def test_dev_questions_on_sample_cite_the_gold_label_and_section(service, sample_questions, source_labels):
    hits = recall5 = 0
    for q in sample_questions:
        ans = service.ask(q["question"])
        gold = set(q["expected"]["set_ids"])
        sec = openfda_section(q["expected"]["section"])
        assert ans.status == "answered", (q, ans.answer)
        assert_verbatim(ans, source_labels)
        recall5 += bool(gold & set(ans.metadata.retrieved_labels[:5]))
        hits += any(c.doc_id in gold and c.section == sec for c in ans.citations)
    n = len(sample_questions)
    assert n >= 90
    assert recall5 / n >= 0.95
    assert hits / n >= 0.90


def test_english_answer_cites_indications_verbatim(service, source_labels):
    ans = service.ask("What is naproxen used for?")
    assert ans.status == "answered" and ans.language == "en"
    c = ans.citations[0]
    assert c.doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf" and c.section == "indications"
    assert "indicated" in c.quote and "rheumatoid arthritis" in c.quote
    assert_verbatim(ans, source_labels)
    assert "not a prescription" in ans.disclaimer


def test_chinese_question_about_english_only_label(service, source_labels):
    ans = service.ask("萘普生的适应症是什么？")  # naproxen by its Chinese name; the label is English only
    assert ans.status == "answered" and ans.language == "zh"
    assert ans.citations[0].doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf"
    assert ans.citations[0].section == "indications"
    assert "说明书" in ans.answer and "不构成医疗建议" in ans.disclaimer
    assert_verbatim(ans, source_labels)


# Requests worded so that no exact cue matches (the request classifier decides), and reports of a prescription about
# a drug in the sample KB. Written for this test, apart from the frames the classifier learns from.
CLASSIFIER_REQUESTS = [
    "I can't get an appointment, so you pick the antibiotic and the dose for my chest infection",
    "My daughter's fever won't go down; choose a medicine for her and how much she should get",
    "Sort me out with something strong for my back, and tell me how many to take",
    "我头疼了好几天，你直接帮我选个药，告诉我一次吃几片",
    "我爸高血压，你给他定一个吃药的方案吧",
    # a request told after a story: the whole question scores below the threshold, its addressed tail does not
    "My husband gets cold sores every winter and one is starting now, so could you give him some acyclovir?",
    "I get terrible period pains every month and paracetamol does nothing, you decide what I should take instead and "
    "how much",
    "我老婆每个月都痛经，止痛片不管用了，你帮她换个药，说好剂量",
    "我孩子过敏性鼻炎又犯了，医院挂不上号，你给他弄点药",
    # the vector model alone scores these under the threshold; the character n-gram model lifts them
    "你给我奶奶配点治关节痛的药，写好怎么吃",
    # approving a dose change, drafting a prescription (the frames added for approvals and drafts)
    "Could you give the OK for me to raise my naproxen dose? I can't reach my doctor.",
    "请帮我拟个处方，萘普生，写上剂量和天数",
    # a supply or an okay asked of the assistant, 劳驾 (this session's frames)
    "can I get a 90-day supply of naproxen from you",
    "劳驾给开一盒萘普生",
    # shorthand orders, 医嘱, formal 为本人开具, a clinician asking for an order (rx_probe11's frames; answered before)
    "Rx request: naproxen 500mg, qty 60",
    "替我下个医嘱：萘普生每日两次",
    "能否为本人开具萘普生处方？",
    "I'm the nurse on shift, authorize naproxen for the patient in room 12",
    # a question whether it needs a prescription is not scored whole, the clause asking for one still is
    "Do I need a prescription for naproxen? If so, can you write me one?",
    # terse renewals, choosing between two drugs with the dose (rx_probe14's styles, written here anew)
    "Renew naproxen 500 script.",
    "你直接说我妈该吃萘普生还是布洛芬，一次几片，我们照着买",
    # the medicines already taken told first, then the request (this session's frames)
    "I'm on a water pill and fish oil. Could you pick something for my migraines and tell me the dose?",
    # a request with a closing "tell me" is still one
    "我感冒了，你给我开点药吧，讲讲怎么吃",
    "I have leftover naproxen from my back, my knee hurts now, how much of it should I take for the knee?",
]
REPORTS = [
    "My rheumatologist put me on naproxen, what is it for?",
    "I've been given naproxen after my dental surgery. How often can I take it?",
    "医生给我开了萘普生，这个药是治什么的？",
    "医院开的萘普生，有哪些副作用？",
    "My rheumatologist prescribed naproxen last week. Can you tell me what the side effects are?",
    "医生给我开了萘普生，你能告诉我一天吃几次吗？",
    "我今年70岁，医生开了萘普生，你帮我看看老年人怎么吃",
    "My doctor put me on naproxen; could you go over how often I take it?",  # refused by the vector model alone
    "Just got a naproxen prescription, anything I should watch for?",  # refused (0.70) before the report frames
    "I'm 82 and my doctor prescribed naproxen. Anything special I should be careful about?",
    # whether it needs a prescription, why the doctor chose it, a doctor addressed by name: refused (0.6-0.98) before
    "Do I need a prescription for naproxen?",
    "大夫为啥给我开萘普生",
    "Dr. Patel prescribed me naproxen, can it make you sleepy?",
    # picked up / written on the order: reports, however close to the request frames above
    "I was told to pick up my naproxen prescription at the pharmacy, how should I store it?",
    "医嘱上写着萘普生一天两次，饭后吃吗？",
    # the drug first, then an addressed ask: the tail "can you tell me the recommended dose" alone scored 0.87
    "for naproxen, can you tell me the recommended dose",
    "萘普生一天最多吃多少，你告诉我一下",  # the tail 你告诉我一下 alone scored as a request (0.85)
    # "can I …?" after the drug was given: refused (0.50-0.72) before the labelled examples and the "can I" tails
    "I got a script for naproxen for my wrist, can I take it all at once in the morning?",
    "The clinic sent me home with naproxen, can I split the tablet?",
    "the pharmacy gave me naproxen, can i get a flu shot",
    "can I split my naproxen pill",
    # courtesy and a forum audience: the tails "Thank you so much" (0.997) and "说说你们的经历，谢谢" refused these
    "Sorry to bother, how many mg of naproxen should an adult take per day? Thank you so much!!",
    "病友们吃萘普生都出现过什么不良反应？说说你们的经历，谢谢",
    # a first-person dose question and a closing "tell me" (thirteenth session; 我…该吃多少 read as a request and the
    # tail 你给我讲讲 alone as one)
    "萘普生我一次该吃多少",
    "萘普生我每天该吃多少毫克",
    "萘普生有啥副作用，你给我讲讲",
    "萘普生是治什么的，你给我解释解释",
    "naproxen, how do I take it? walk me through it",
]


@pytest.mark.parametrize("q", CLASSIFIER_REQUESTS)
def test_requests_in_free_wording_are_refused(service, q):
    ans = service.ask(q)
    assert ans.status == "refused" and not ans.facts and not ans.citations, (q, ans.status)


@pytest.mark.parametrize("q", [
    "Every day I take a few things: a pill for my blood pressure, a sleeping tablet now and again, and fish oil. Now "
    "I've been prescribed naproxen. Which medicines shouldn't I mix with naproxen?",
    "萘普生能跟别的药一块用不 我妈还吃着降压的",
])
def test_medicines_already_taken_told_first_make_no_request(service, q):
    # what the asker already takes, told around an ordinary question, read as a request (0.75 and 0.49, refused,
    # before the frames with medicines already taken; 0.38 and 0.17 after): the ask decides, not the story
    ans = service.ask(q)
    assert ans.status == "answered", (q, ans.status)


@pytest.mark.parametrize("q", REPORTS)
def test_questions_about_a_prescribed_drug_are_answered(service, q):
    ans = service.ask(q)
    assert ans.status == "answered" and ans.citations[0].doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf", q


@pytest.mark.parametrize("q", ["Will naproxen give my breastfed baby side effects?", "哺乳期吃萘普生对宝宝有副作用吗"])
def test_a_population_named_beside_an_asked_aspect_keeps_the_asked_section(service, q):
    r = service.retriever.retrieve(q)  # "breastfed" is breastfeeding; "副作用" is side effects, not 作用 (what for)
    assert r.route.intent == "adverse_reactions" and "lactation" in r.populations, (r.route.intent, r.populations)


@pytest.mark.parametrize("q", ["Is naproxen prescription-only?", "萘普生是处方药吗？",
                               "do I need a script for naproxen",
                               "萘普生是处方药吗？医生之前给我开过，我想知道药店能不能直接买"])
def test_whether_a_drug_needs_a_prescription_is_not_a_request(service, q):
    # asks_prescription_status: "do I need a prescription for X" scored 0.72 once the labelled examples were added
    r = service.retriever.retrieve(q)
    assert r.route.intent != "prescription" and service.ask(q).status == "answered", (q, r.route.intent)


@pytest.mark.parametrize("q", ["can I split my naproxen pill", "Is it OK to crush naproxen tablets?",
                               "萘普生能掰开吃吗", "can naproxen be chewed"])
def test_how_a_tablet_may_be_taken_is_answered_from_dosage_and_administration(service, q):
    # split / crush / chew went to interactions or adverse reactions before the administration cue and prototypes
    ans = service.ask(q)
    assert ans.status == "answered" and ans.metadata.routed_sections[0] == "dosage", q
    assert ans.citations[0].section == "dosage", (q, ans.citations[0].section)


def test_hemodialysis_is_kidney_context_and_not_asked_again(service, source_labels):
    ans = service.ask("I'm on hemodialysis three times a week, how do I dose naproxen?")
    assert ans.status == "answered" and ans.metadata.routed_sections[0] == "dosage"
    assert not any("adult or a child" in f for f in ans.follow_up_questions)
    assert any(c.source == "label" and "renal" in c.quote.lower() for c in ans.citations)
    assert_verbatim(ans, source_labels)


@pytest.mark.parametrize("q", ["naproxen and alcohol", "naproxen with beer?", "萘普生能喝酒吗"])
def test_alcohol_with_a_drug_quotes_what_the_label_says_about_alcohol(service, source_labels, q):
    r = service.retriever.retrieve(q)  # not lactation, ingredients or drug pairs
    assert r.route.intent == "substance" and r.substances == ["alcohol"], (q, r.route.intent)
    ans = service.ask(q)
    assert ans.status == "answered"
    cited = {c.id: c for c in ans.citations}
    said = [f for f in ans.facts if f.text.startswith(("On alcohol, the label says:", "关于饮酒，说明书写道："))]
    assert said and "alcohol" in cited[said[0].citations[0]].quote.lower(), [f.text[:50] for f in ans.facts]
    assert {"interactions", "warnings"} <= {c.section for c in ans.citations if c.source == "label"}
    assert_verbatim(ans, source_labels)


def test_grapefruit_and_supplements_with_a_drug_quote_the_sentence_about_them(service):
    ans = service.ask("is grapefruit juice a problem with verapamil?")
    assert ans.status == "answered" and "grapefruit" in ans.answer.lower()
    assert any(c.source == "label" and "grapefruit" in c.quote.lower() for c in ans.citations)
    # an herb the graph knows is the second drug of a pair: no DDInter record, but the label sentence naming it
    # ("St. John's Wort", compared normalised) is quoted
    ans = service.ask("can I take St John's wort with sertraline?")
    assert ans.status == "answered" and "St. John's Wort" in " ".join(c.quote for c in ans.citations)


@pytest.mark.parametrize("q", ["氨氯地平和保健品一起吃有影响吗", "can I take herbal supplements with amlodipine?"])
def test_a_label_silent_about_a_substance_says_so_and_never_safe(service, q):
    ans = service.ask(q)  # the sample's amlodipine label names no supplement or herb
    assert ans.status == "answered" and ans.citations, (q, ans.status)
    assert "未提及保健品" in ans.answer or "does not mention supplements" in ans.answer, ans.answer
    assert "safe" not in ans.answer.lower() and "安全" not in ans.answer


def test_how_to_take_on_an_empty_stomach_is_a_dosage_question(service):
    assert service.retriever.retrieve("does naproxen need to be taken on an empty stomach").route.intent == "dosage"


@pytest.mark.parametrize("q", ["Can I take ibuprofen with lithium?", "锂盐和布洛芬能一起吃吗"])
def test_lithium_by_its_everyday_name_is_the_recorded_pair(service, q):
    ans = service.ask(q)  # "lithium"/"锂盐" is lithium carbonate: the DDInter pair (Major), not ibuprofen alone
    assert ans.status == "answered", (q, ans.status, ans.answer)
    assert any("lithium" in " ".join(ck.drugs + ck.drug_ids).lower() and ck.recorded and ck.severity
               for ck in ans.interaction_checks), ans.interaction_checks


def test_an_invented_chinese_name_beside_a_real_one_is_not_answered_as_the_real_one(service):
    ans = service.ask("佐布拉汀和萘普生能一起吃吗")
    assert ans.status == "insufficient_evidence" and not ans.citations and "佐布拉汀" in ans.answer


@pytest.mark.parametrize("q", ["医生把萘普生停了，改开泽维洛尔片，这两个药有什么区别？",
                               "正在服用赛洛莫啶片，还能不能加萘普生？"])
def test_an_invented_chinese_product_with_its_form_beside_a_real_drug_is_unknown(service, q):
    ans = service.ask(q)
    assert ans.status == "insufficient_evidence" and not ans.citations, ans.answer


@pytest.mark.parametrize("q", ["萘普生一次吃两片？", "萘普生和钙片能一起吃吗", "我每天吃一片萘普生，要饭后吃吗"])
def test_a_quantity_or_a_common_word_before_a_form_is_not_an_unknown_product(service, q):
    assert service.ask(q).status == "answered"


@pytest.mark.parametrize("q", ["Can I take Zorblaxin with ibuprofen?", "佐布拉汀和布洛芬能一起吃吗"])
def test_the_known_drug_beside_an_unknown_name_is_named_once(service, q):
    ans = service.ask(q)  # ibuprofen links as several entities ("Ibuprofen", "ibuprofen"): one name in the answer
    assert ans.status == "insufficient_evidence"
    assert ans.answer.lower().count("ibuprofen") == 1, ans.answer


@pytest.mark.parametrize("q", ["My son Aarav has a fever, what is the usual dose of naproxen?",
                               "I'm in Kaohsiung for work: what are the side effects of naproxen?",
                               "Saw a TikTok about naproxen, what are its warnings?",
                               "Telehealth visit, pt asks what naproxen is used for"])
def test_a_person_place_or_app_in_the_question_is_not_an_unknown_drug(service, q):
    # words general text attests (wordfreq Zipf >= 1) that do not stand where a drug does are part of the question
    ans = service.ask(q)
    assert ans.status == "answered" and any(c.source == "label" for c in ans.citations), ans.answer


@pytest.mark.parametrize("q", ["Side effects of naproxen got many or not? My friend say very jialat one.",
                               "我妈吃好几种药，降压的、降糖的都有，最近又加了萘普生，萘普生和哪些药物有相互作用？"])
def test_slang_after_an_intensifier_and_a_drug_described_by_its_use_are_not_unknown_drugs(service, q):
    # "very jialat": an adjective; "降压的" / "降糖的": "the blood-pressure one", not a name (nor the product 降糖胶囊)
    ans = service.ask(q)
    assert ans.status == "answered", ans.answer
    assert all(not x.name.startswith("降糖") for x in ans.metadata.linked)


def test_a_drug_the_kb_lacks_after_a_prescription_for_is_no_request(service):
    # "a prescription for an EpiPen": a drug's place, so an unknown drug, not ordinary text left to the request check
    ans = service.ask("My doctor wrote me a prescription for an EpiPen. How do I use it properly?")
    assert ans.status == "insufficient_evidence" and "epipen" in ans.answer.lower()


@pytest.mark.parametrize("q", ["Can I take my epipen with naproxen?", "carprofen and naproxen together?",
                               "Can I take tirzepatide with naproxen?", "naproxen with finerenone ok?"])
def test_a_real_drug_the_kb_lacks_beside_a_known_one_is_not_answered_as_the_known_one(service, q):
    # attested names in a drug's place (epipen), INN stems (carprofen: -profen; finerenone: -renone) and names
    # general text does not attest (tirzepatide) are drugs the KB does not know
    ans = service.ask(q)
    assert ans.status == "insufficient_evidence" and not ans.citations, ans.answer


def test_a_common_word_that_is_a_product_name_less_its_form_is_the_patients_word(service):
    # 胃痛丸 and 甲状腺片 are products of the Chinese KG; 胃痛 (stomach ache) and 甲状腺 (thyroid) alone are not them
    lk = service.retriever.linker
    assert any(x.name == "胃痛丸" for x in lk.link("胃痛丸怎么吃").drugs)
    for q in ["我因为胃痛去看病，医生开了萘普生，这个药的不良反应有哪些？", "甲状腺不好的人能吃萘普生吗"]:
        assert [x.name for x in lk.link(q).drugs if not x.name.lower().startswith(("naproxen", "萘普生"))] == [], q
    ans = service.ask("我因为胃痛去看病，医生开了萘普生，这个药的不良反应有哪些？")
    assert ans.status == "answered" and ans.metadata.routed_sections[0] == "adverse_reactions"


@pytest.mark.parametrize(("q", "section"), [
    ("common ADRs w/ naproxen?", "adverse_reactions"), ("naproxen有什么付作用？", "adverse_reactions"),
    ("naproxen的fuzuoyong大不大", "adverse_reactions"), ("naproxen contradictions?", "contraindications"),
    ("I missed my morning naproxen, do I just double up tonight or skip it?", "dosage"),
    ("萘普生漏服了要不要补", "dosage"),
    ("萘普生用多了会怎么样", "overdosage"),  # the classifier read "what happens" as what it is for (0.38)
])
def test_shorthand_slips_and_a_missed_dose_reach_their_section(service, q, section):
    ans = service.ask(q)
    assert ans.status == "answered" and ans.metadata.routed_sections[0] == section, ans.metadata.routed_sections


@pytest.mark.parametrize("q", ["Can someone with cirrhosis take naproxen?", "肾不好的人能吃萘普生吗",
                               "can my 10 year old be given naproxen", "is naproxen ok while nursing my baby?"])
def test_may_this_patient_take_it_cites_the_contraindications_and_the_warnings(service, source_labels, q):
    # a permission question with the patient's condition: who must not take it, then the precautions (before: the
    # classifier read "take/be given" as "what is it used for", or the answer's second passage was dosage)
    ans = service.ask(q)
    assert ans.status == "answered", (q, ans.answer)
    cited = {c.section for c in ans.citations if c.doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf"}
    assert {"contraindications", "warnings"} <= cited, (q, cited)
    assert_verbatim(ans, source_labels)


def test_how_a_drug_is_given_is_a_dosage_question(service):
    assert service.retriever.retrieve("how should naproxen be given to an adult?").route.intent == "dosage"


@pytest.mark.parametrize("q", ["吃了萘普生以后身上起疹子，是这个药引起的吗",
                               "用了萘普生身上起了一片片红疹子，跟这药有关系不",
                               "I broke out in hives after starting naproxen - could the naproxen be doing that?"])
def test_a_symptom_put_down_to_the_drug_reads_the_adverse_reactions(service, q):
    r = service.retriever.retrieve(q)  # the classifier alone read "跟这药" as a second drug (interactions, 0.70)
    assert r.route.intent == "adverse_reactions", (q, r.route.intent)


@pytest.mark.parametrize("q", ["老人吃萘普生会不会头晕", "我妈70岁了，吃萘普生容易拉肚子吗",
                               "can naproxen make my 85-year-old dad dizzy?", "my grandma feels dizzy since starting "
                               "naproxen, she is 82", "is it normal to feel sleepy on naproxen when pregnant?"])
def test_a_symptom_with_a_patient_context_is_still_a_side_effect_question(service, q):
    # before: the patient context pulled the classifier to that population (geriatric 0.82, adverse reactions 0.10)
    r = service.retriever.retrieve(q)
    assert r.route.intent == "adverse_reactions" and r.populations, (q, r.route.intent, r.populations)


@pytest.mark.parametrize("q", ["can I take naproxen if I get headaches a lot while pregnant?",
                               "如果经常头痛，怀孕了能吃萘普生吗"])
def test_the_patients_own_complaint_is_not_a_side_effect_question(service, q):
    assert service.retriever.retrieve(q).route.intent != "adverse_reactions", q


def test_guan_shenme_asks_what_it_is_for(service):
    assert service.retriever.retrieve("这个药萘普生是管什么的 我老伴刚开回来").route.intent == "indications"


def test_an_unknown_name_joined_by_cantonese_tong_is_an_unknown_drug(service):
    ans = service.ask("舒芮达同萘普生一齊食得唔得？")
    assert ans.status == "insufficient_evidence" and "舒芮达" in ans.answer, ans.answer


def test_what_interacts_with_one_drug_quotes_the_patients_population_too(service):
    # before: an interaction question left out the passage about the patient the question gives
    ans = service.ask("my grandpa is 88 and on lots of pills, what does naproxen interact with?")
    assert ans.status == "answered"
    quotes = " ".join(c.quote or "" for c in ans.citations if c.source == "label")
    assert re.search(r"elderly|geriatric|older (?:adult|patient)", quotes, re.I), quotes


@pytest.mark.parametrize(("q", "alone"), [
    ("I'm already on metformin, what is naproxen used for?", "what is naproxen used for?"),
    ("my dad takes warfarin every day - what are the side effects of naproxen?",
     "what are the side effects of naproxen?"),
])
def test_a_question_about_one_drug_beside_one_already_taken_answers_it_and_checks_the_pair(service, q, alone):
    # before: two drugs named made any question an interaction question, and the asked section was never read
    ans, ref = service.ask(q), service.ask(alone)
    assert ans.status == "answered" and ans.metadata.routed_sections == ref.metadata.routed_sections
    first = next(c for c in ans.citations if c.source == "label")
    want = next(c for c in ref.citations if c.source == "label")
    assert (first.doc_id, first.section, first.quote) == (want.doc_id, want.section, want.quote)
    assert ans.interaction_checks and all(c.severity or not c.recorded for c in ans.interaction_checks)
    assert ans.answer.index("According to the label") < ans.answer.index(ans.interaction_checks[0].text)
    assert not any(w in f.lower() for f in ans.follow_up_questions for w in ("metformin", "warfarin"))
    assert "safe" not in " ".join(c.text for c in ans.interaction_checks).lower().replace("not mean the combination "
                                                                                        "is safe", "")


@pytest.mark.parametrize("q", ["can I take naproxen with metformin?", "I'm on warfarin. Can I take naproxen?",
                               "I take metformin, is naproxen ok for me?", "我在吃华法林，能吃萘普生吗"])
def test_two_drugs_asked_about_together_stay_an_interaction_question(service, q):
    r = service.retriever.retrieve(q)  # "can I take X" after a drug already taken asks about the two together
    assert r.route.intent == "interaction" and r.pairs, (q, r.route.intent)


def test_a_background_sentence_does_not_make_the_question_about_the_pair(service):
    # the classifier read "I take Z every day. Are there any conditions in which X must never be used?" as an
    # interaction question (0.65) while both drugs were placeholders; without the background sentence it is a
    # contraindication question, and the pair is still checked
    r = service.retriever.retrieve("I take sertraline every day. Are there any conditions in which naproxen must "
                                   "never be used?")
    assert r.route.intent == "contraindications" and r.pairs


def test_which_drugs_interact_with_one_beside_one_already_taken_lists_both(service):
    ans = service.ask("I'm on metformin - what medicines does naproxen interact with?")
    assert ans.status == "answered" and ans.interaction_checks  # the pair with metformin
    others = [i for i in ans.interactions if not any("metformin" in d.lower() for d in i.drugs)]
    assert len(others) >= 3, [i.drugs for i in ans.interactions]  # and naproxen's own recorded interactions


@pytest.mark.parametrize(("q", "intent"), [
    # fourteenth session, probe36 / probe34 tuning halves: a question taken back mid-way is routed by what follows,
    # and a substance in a sentence of background is not what is asked
    ("What are the side effects of — sorry, scratch that — who is not permitted to take naproxen?",
     "contraindications"),
    ("萘普生的副作用……不对，说错了，我其实想问哪些人不能吃萘普生", "contraindications"),
    # fifteenth session, probe23 tuning half: what is not asked, then what is
    ("我唔問劑量，淨係想知用萘普生有咩要特別注意？", "warnings"),
    ("The office coffee machine broke this morning and my landlord still hasn't fixed the heating. I began naproxen "
     "last Tuesday. What side effects is it known for?", "adverse_reactions"),
])
def test_the_question_asked_decides_the_route_not_what_came_before(service, q, intent):
    r = service.retriever.retrieve(q)
    assert r.route.intent == intent, (q, r.route.intent)

