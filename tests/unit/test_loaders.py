"""Loaders against the real shared data (../shared/data or $DRUGRAG_DATA_DIR), plus small malformed inputs written to
tmp_path. Every dataset is loaded once per module."""

from __future__ import annotations

import collections
import csv
import json
import os
import re
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from kb_loaders.cmedkg import RELATIONS, load_cmedkg
from kb_loaders.cn_inserts import clean_name, load_cn_inserts
from kb_loaders.ddinter import LEVELS, load_ddinter
from kb_loaders.model import GraphRecords, Label, LoadResult
from kb_loaders.names import base_name
from kb_loaders.openfda import load_openfda
from kb_loaders.sections import CANONICAL_SECTIONS, LOINC_SKIP
from kb_loaders.spl import load_spl

DATA = Path(os.environ.get("DRUGRAG_DATA_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")

OPENFDA_ZIP = DATA / "openfda" / "drug-label-0001-of-0001.json.zip"
NAPROXEN = "000155a8-709c-44e5-a75f-cd890f3a7caf"
# an HTML/XML tag such as <td>, </paragraph>, <col width="19%"/> ("LDL-C < 100 … > 2" is not one)
MARKUP = re.compile(r"</?[a-zA-Z][\w:.-]*(\s+[\w:.-]+(=(\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>")


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _check_labels(res: LoadResult, language: str, source: str) -> None:
    ids = [lab.id for lab in res.labels]
    assert len(ids) == len(set(ids))
    for lab in res.labels:
        assert lab.title.strip() and lab.language == language and lab.source == source and lab.source_file
        assert lab.sections
        for s in lab.sections:
            assert s.key in CANONICAL_SECTIONS and s.name and s.text == s.text.strip() and s.text
    for k in res.skipped:
        assert k.file and k.record and k.reason


def _raw_openfda_records() -> list[dict[str, Any]]:
    with zipfile.ZipFile(OPENFDA_ZIP) as z:
        return json.loads(z.read(z.namelist()[0]))["results"]


# --------------------------------------------------------------------------------------------------------- openFDA
@pytest.fixture(scope="module")
def openfda() -> LoadResult:
    res, secs = _timed(load_openfda, DATA / "openfda")
    assert secs < 10
    return res


def test_openfda_real_zip(openfda: LoadResult) -> None:
    raw_ids = {r["set_id"] for r in _raw_openfda_records()}
    assert len(raw_ids) == 1105
    _check_labels(openfda, "en", "openfda")
    # 1,105 records with unique set_ids; two of them (a ketotifen OTC and a Desferal label) carry nothing but their
    # openfda block, no section field at all, so they are reported as skipped ("no section text"), not loaded.
    assert len(openfda.labels) == 1103
    assert [(k.reason, k.record.split("(")[-1].rstrip(")")) for k in openfda.skipped] == [
        ("no section text", "0fe119ad-cb44-4e90-a096-0ed0ba63dc31"),
        ("no section text", "38eff751-96c5-c48a-e063-6294a90a0e48"),
    ]
    assert {lab.id for lab in openfda.labels} | {"0fe119ad-cb44-4e90-a096-0ed0ba63dc31",
                                                 "38eff751-96c5-c48a-e063-6294a90a0e48"} == raw_ids
    assert all(k.file == "drug-label-0001-of-0001.json.zip!drug-label-0001-of-0001.json" for k in openfda.skipped)
    assert openfda.labels[0].source_file == "drug-label-0001-of-0001.json.zip!drug-label-0001-of-0001.json"


def test_openfda_known_label(openfda: LoadResult) -> None:
    lab = next(lab for lab in openfda.labels if lab.id == NAPROXEN)
    for key in ("indications", "dosage", "boxed_warning", "contraindications", "interactions", "warnings"):
        sec = lab.section(key)
        assert sec is not None and len(sec.text) > 100, key
    assert lab.section("indications").text.startswith("1 INDICATIONS AND USAGE Naproxen")  # type: ignore[union-attr]
    assert lab.section("boxed_warning").name == "boxed_warning"  # type: ignore[union-attr]
    assert lab.generic_names == ["NAPROXEN"] and lab.brand_names == ["Naproxen"]
    assert lab.substance_names == ["NAPROXEN"] and lab.rxcui == ["198014"] and lab.unii == ["57Y76R9ATQ"]
    assert lab.manufacturer == "A-S Medication Solutions" and lab.product_type == "HUMAN PRESCRIPTION DRUG"
    assert lab.title == "Naproxen — A-S Medication Solutions"
    assert lab.version is None and lab.effective_date is None  # absent in this sample
    for s in lab.sections:
        assert "  " not in s.text and "\n" not in s.text


def test_openfda_no_table_sections(openfda: LoadResult) -> None:
    names = collections.Counter(s.name for lab in openfda.labels for s in lab.sections)
    assert not [n for n in names if n.endswith("_table")]
    assert names["indications_and_usage"] == 1101 and names["boxed_warning"] == 314 and names["purpose"] == 234
    assert not any(MARKUP.search(s.text) for lab in openfda.labels for s in lab.sections)
    otc = next(lab for lab in openfda.labels if lab.section("ingredients") is not None)
    assert otc.section("indications") is not None  # OTC "purpose"


def test_openfda_json_and_jsonl_variants(tmp_path: Path) -> None:
    raw = _raw_openfda_records()
    picked = [r for r in raw if r["set_id"] == NAPROXEN] + raw[10:14]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "labels.json").write_text(json.dumps({"meta": {}, "results": picked}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in picked) + "\n")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "bare.json").write_text(json.dumps(picked))
    zipped = tmp_path / "d" / "labels.json.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("labels.json", json.dumps({"meta": {}, "results": picked}))

    def comparable(res: LoadResult) -> list[dict[str, Any]]:
        assert not res.skipped
        return [{**asdict(lab), "source_file": None} for lab in res.labels]

    from_zip = comparable(load_openfda(zipped))
    assert len(from_zip) == 5 and from_zip[0]["id"] == NAPROXEN
    for variant in (tmp_path / "a", tmp_path / "b" / "labels.jsonl", tmp_path / "c"):
        assert comparable(load_openfda(variant)) == from_zip
    assert load_openfda(tmp_path / "b").labels[0].source_file == "labels.jsonl"
    assert load_openfda(zipped).labels[0].source_file == "labels.json.zip!labels.json"


def test_openfda_malformed_inputs_are_reported(tmp_path: Path) -> None:
    good = {"set_id": "s-good", "id": "v1", "version": "3", "effective_time": "20230115",
            "indications_and_usage": ["1 INDICATIONS  Used\nfor pain."], "indications_and_usage_table": ["<table/>"],
            "openfda": {"generic_name": ["WARFARIN SODIUM"], "brand_name": ["Coumadin"],
                        "manufacturer_name": ["BMS"], "product_type": ["HUMAN PRESCRIPTION DRUG"]}}
    nonlist = {"set_id": "s-nonlist", "warnings": "a plain string, not a list"}
    nonstr = {"set_id": "s-nonstr", "warnings": ["ok", 3]}
    empty = {"set_id": "s-empty", "warnings": ["   "]}
    no_ids = {"warnings": ["text but no set_id or id"]}
    only_id = {"id": "spl-version-id", "warnings": ["text with an id but no set_id"]}
    d = tmp_path / "src"
    d.mkdir()
    (d / "a_broken.json").write_text('{"meta": {}, "results": [ {"set_id": ')
    (d / "b_records.json").write_text(json.dumps({"results": [good, nonlist, ["not", "a", "dict"], nonstr, empty,
                                                              no_ids, only_id]}))
    (d / "c_lines.jsonl").write_text(json.dumps({**good, "set_id": "s-line"}) + "\n\n"
                                     + json.dumps(good)[:40] + "\n")  # a truncated last line
    (d / "notes.txt").write_text("not an openFDA file")
    res = load_openfda(d)
    assert sorted(lab.id for lab in res.labels) == sorted(["s-good", "s-line", res.labels[1].id])
    hashed = res.labels[1]
    assert hashed.id.startswith("h-") and hashed.section("warnings") is not None
    assert load_openfda(d).labels[1].id == hashed.id  # the hash id is stable
    got = {(k.file, k.record): k.reason for k in res.skipped}
    assert got[("a_broken.json", "*")].startswith("invalid JSON")
    assert "'warnings' is not a list of strings" in got[("b_records.json", "#1 (s-nonlist)")]
    assert "not a JSON object" in got[("b_records.json", "#2")]
    assert "not a list of strings" in got[("b_records.json", "#3 (s-nonstr)")]
    assert got[("b_records.json", "#4 (s-empty)")] == "no section text"
    assert got[("b_records.json", "#5")] == "no set_id, openfda.spl_set_id or id"
    assert "truncated" in got[("c_lines.jsonl", "line 3")]
    assert len(res.skipped) == 7

    lab = next(lab for lab in res.labels if lab.id == "s-good")
    assert lab.version == "3" and lab.effective_date == "2023-01-15"
    assert lab.title == "Coumadin (WARFARIN SODIUM) — BMS"
    assert [(s.key, s.name, s.text) for s in lab.sections] == [
        ("indications", "indications_and_usage", "1 INDICATIONS Used for pain.")]


def test_openfda_duplicate_set_ids_keep_higher_version(tmp_path: Path) -> None:
    base = {"set_id": "dup", "indications_and_usage": ["x"]}
    (tmp_path / "one.jsonl").write_text("\n".join(json.dumps({**base, "version": v, "indications_and_usage": [v]})
                                                  for v in ("2", "10", "3")))
    res = load_openfda(tmp_path)
    assert len(res.labels) == 1 and res.labels[0].version == "10" and res.labels[0].sections[0].text == "10"
    assert len(res.skipped) == 2 and all(k.reason.startswith("duplicate set_id dup") for k in res.skipped)


def test_openfda_jsonl_line_with_unicode_line_separator(tmp_path: Path) -> None:
    rec = {"set_id": "ls", "warnings": ["first\u2028second\x85third"]}
    (tmp_path / "x.jsonl").write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    res = load_openfda(tmp_path / "x.jsonl")
    assert not res.skipped and res.labels[0].sections[0].text == "first second third"


def test_openfda_limit() -> None:
    res = load_openfda(OPENFDA_ZIP, limit=25)
    assert len(res.labels) == 25


# ------------------------------------------------------------------------------------------------------------- SPL
@pytest.fixture(scope="module")
def spl() -> dict[str, Label]:
    res, secs = _timed(load_spl, DATA / "spl")
    assert secs < 10
    assert not res.skipped
    _check_labels(res, "en", "spl")
    return {lab.source_file: lab for lab in res.labels}


def test_spl_real_files(spl: dict[str, Label]) -> None:
    assert sorted(spl) == ["cough.xml", "humira.xml", "lipitor-orig.xml", "lipitor-repack.xml", "no-title.xml"]
    for lab in spl.values():
        assert re.fullmatch(r"[0-9a-f-]{36}", lab.id) and lab.version and lab.effective_date
        assert lab.generic_names and lab.brand_names and lab.substance_names and lab.unii and lab.manufacturer
    lip = spl["lipitor-orig.xml"]
    assert lip.id == "c6e131fe-e7df-4876-83f7-9156fc4e8228" and lip.version == "11"
    assert lip.effective_date == "2014-01-13"
    assert lip.title.startswith("LIPITOR® (atorvastatin calcium) Tablets")  # highlights boilerplate removed
    assert lip.brand_names == ["Lipitor"] and lip.unii == ["48A5M73Z4Q"]
    assert lip.manufacturer == "Parke-Davis Div of Pfizer Inc"
    assert spl["humira.xml"].generic_names == ["Adalimumab"]  # the kit's alcohol swab is not a drug of the label
    assert spl["cough.xml"].title.startswith("Drug Facts: TRIAMINIC Childrens Night Time")


def test_spl_no_title_gets_one(spl: dict[str, Label]) -> None:
    lab = spl["no-title.xml"]
    assert lab.title == "Haloperidol — Contract Pharmacy Services-PA"


def test_spl_lipitor_sections(spl: dict[str, Label]) -> None:
    lab = spl["lipitor-orig.xml"]
    by_key = {s.key: s for s in reversed(lab.sections)}  # first section of each key
    for key, code in (("indications", "34067-9"), ("contraindications", "34070-3"), ("interactions", "34073-7"),
                      ("adverse_reactions", "34084-4"), ("warnings", "43685-7"), ("dosage", "34068-7"),
                      ("lactation", "34080-2"), ("pediatric", "34081-0"), ("geriatric", "34082-8")):
        assert by_key[key].name.startswith(code + " "), key
        assert len(by_key[key].text) > 300
    assert by_key["indications"].name == "34067-9 1 INDICATIONS AND USAGE"
    for s in lab.sections:
        assert not MARKUP.search(s.text) and "  " not in s.text
    # subsections are flattened in order into their top-level section, headings included
    ind = by_key["indications"].text
    assert ind.index("1.1 Prevention of Cardiovascular Disease") < ind.index("1.2 Hyperlipidemia") \
        < ind.index("1.3 Limitations of Use")
    inter = by_key["interactions"].text
    assert inter.index("7.1 Strong Inhibitors of CYP 3A4") < inter.index("7.2 Grapefruit Juice") \
        < inter.index("7.10 Warfarin") < inter.index("7.11 Colchicine")
    # nested table cells and deeper levels (6.1 → unnamed tables) are there too
    assert "6.1 Clinical Trial Adverse Experiences" in by_key["adverse_reactions"].text
    # 4.3 Pregnancy is a contraindication: it stays in CONTRAINDICATIONS; 8.3 Nursing Mothers becomes lactation
    assert "4.3 Pregnancy" in by_key["contraindications"].text
    assert by_key["lactation"].text.startswith("8.3 Nursing Mothers")
    assert "8.3 Nursing Mothers" not in by_key["pregnancy"].text
    # two sections may share a key: DOSAGE AND ADMINISTRATION and DOSAGE FORMS AND STRENGTHS
    assert [s.name[:7] for s in lab.sections if s.key == "dosage"] == ["34068-7", "43678-2"]


def test_spl_boxed_text_nested_in_dosage_stays_there(spl: dict[str, Label]) -> None:
    lab = spl["no-title.xml"]
    assert [s.key for s in lab.sections].count("boxed_warning") == 1  # only the real, top-level one
    assert [s.key for s in lab.sections if s.key in ("pediatric", "geriatric")] == ["pediatric", "geriatric"]


def _spl_reference_chars(path: Path) -> collections.Counter[str]:
    """Every character of the body text (titles, text, nested sections), minus furniture, highlights excerpts
    and image alt text, ignoring whitespace."""
    out: list[str] = []

    def walk(el: ET.Element) -> None:
        if el.tag.split("}")[-1] in ("excerpt", "id", "code", "effectiveTime", "observationMedia"):
            return
        out.append(el.text or "")
        for c in el:
            walk(c)
            out.append(c.tail or "")

    ns = "{urn:hl7-org:v3}"
    body = ET.parse(path).getroot().find(f"{ns}component/{ns}structuredBody")
    assert body is not None
    for comp in body.findall(f"{ns}component"):
        sec = comp.find(f"{ns}section")
        assert sec is not None
        code = sec.find(f"{ns}code")
        if code is not None and code.get("code") in LOINC_SKIP:
            continue
        for c in sec:
            if c.tag.split("}")[-1] in ("title", "text", "component"):
                walk(c)
    return collections.Counter(re.sub(r"\s", "", "".join(out)))


@pytest.mark.parametrize("name", ["cough.xml", "humira.xml", "lipitor-orig.xml", "no-title.xml"])
def test_spl_text_never_lost_never_duplicated(spl: dict[str, Label], name: str) -> None:
    got = collections.Counter(re.sub(r"\s", "", "".join(s.text for s in spl[name].sections)))
    assert got == _spl_reference_chars(DATA / "spl" / name)


def test_spl_broken_files_are_skipped(tmp_path: Path) -> None:
    good = (DATA / "spl" / "cough.xml").read_bytes()
    (tmp_path / "a_good.xml").write_bytes(good)
    (tmp_path / "b_truncated.xml").write_bytes(good[: len(good) // 2])
    (tmp_path / "c_other.xml").write_text("<?xml version='1.0'?><catalog><item/></catalog>")
    (tmp_path / "d_nobody.xml").write_text('<document xmlns="urn:hl7-org:v3"><setId root="x"/></document>')
    res = load_spl(tmp_path)
    assert [lab.source_file for lab in res.labels] == ["a_good.xml"]
    got = {k.file: (k.record, k.reason) for k in res.skipped}
    assert got["b_truncated.xml"][0] == "*" and got["b_truncated.xml"][1].startswith("malformed XML")
    assert got["c_other.xml"][1].startswith("not an SPL document")
    assert "structuredBody" in got["d_nobody.xml"][1]


# -------------------------------------------------------------------------------------------- Chinese inserts
@pytest.fixture(scope="module")
def cn() -> LoadResult:
    res, secs = _timed(load_cn_inserts, DATA / "zh_inserts")
    assert secs < 10
    return res


def test_cn_real_inserts(cn: LoadResult) -> None:
    _check_labels(cn, "zh", "cn_insert")
    assert len(cn.labels) + len(cn.skipped) == 400
    assert len(cn.labels) == 400  # every record of the sample has 【header】 sections
    assert all(lab.id.startswith("cn-") for lab in cn.labels)
    by_id = {lab.id: lab for lab in cn.labels}
    lab = by_id["cn-val-1378"]
    assert lab.title == "艾附暖宫丸" and lab.generic_names == ["艾附暖宫丸"] and lab.brand_names == ["艾附暖宫丸"]
    assert lab.manufacturer == "山东沃华医药科技股份有限公司"
    assert [(s.key, s.name) for s in lab.sections[:4]] == [
        ("other", "药品商品名称"), ("other", "药品名称"), ("other", "批准文号"), ("ingredients", "成分")]
    assert ("other", "22") in [(s.key, s.name) for s in lab.sections]  # numeric artefact header, name kept


def test_cn_header_mapping(cn: LoadResult) -> None:
    pairs = collections.Counter((s.name, s.key) for lab in cn.labels for s in lab.sections)
    expected = {"功能主治": "indications", "适应症": "indications", "功效": "indications", "用法用量": "dosage",
                "不良反应": "adverse_reactions", "相互作用": "interactions", "注意事项": "warnings",
                "成分": "ingredients", "儿童用药": "pediatric", "有 效 期": "other", "43": "other", "制药公司": "other"}
    for name, key in expected.items():
        assert pairs[(name, key)] > 0, name
        assert not [p for p in pairs if p[0] == name and p[1] != key]


def test_cn_inline_brackets_are_not_headers(cn: LoadResult) -> None:
    by_id = {lab.id: lab for lab in cn.labels}
    lab = by_id["cn-val-354"]  # 【药品商品名称】 【强寿】 解毒通淋丸 （60丸装）-广西强寿药业集团
    assert lab.brand_names == ["解毒通淋丸"]
    assert lab.sections[0].name == "药品商品名称" and "【强寿】" in lab.sections[0].text
    # "八珍益母丸药品名称】 八珍益母丸": a header that lost its opening bracket
    lab = by_id["cn-val-1192"]
    assert [(s.name, s.text) for s in lab.sections[:2]] == [("药品商品名称", "八珍益母丸"), ("药品名称", "八珍益母丸")]
    # no drug name in the insert at all: the approval number names it
    assert by_id["cn-val-1271"].title == "国药准字Z20044101"


@pytest.mark.parametrize(("raw", "name"), [
    ("【强寿】 解毒通淋丸 （60丸装）-广西强寿药业集团", "解毒通淋丸"),
    ("同仁堂 妇科得生丸 9g*10粒", "妇科得生丸"),
    ("乳块消口服液(三堂)", "乳块消口服液"),
    ("威门-当归调经颗粒", "当归调经颗粒"),
    ("缩泉丸 --【吉林龙鑫药业有限公司】", "缩泉丸"),
    ("甲清 宫瘤清片0.37g*36片", "宫瘤清片"),
    ("乳核内消丸乳核内消丸", "乳核内消丸"),
    ("5-氟尿嘧啶片", "5-氟尿嘧啶片"),
])
def test_cn_clean_name(raw: str, name: str) -> None:
    assert clean_name(raw) == name


def test_cn_malformed_records(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "ok", "text": "【通用名称】 华法林钠片 【商品名称】 可密定 【适应症】 血栓。 【禁忌】 出血。"
                    "【药物相互作用】 阿司匹林。【生产企业】 某某药业有限公司 【用 法 用 量】 口服。 【注意事项】 注意"
                    "出血\ufffd"}, ensure_ascii=False),
        json.dumps({"id": "noheads", "text": "一段没有任何标题的说明书文字"}, ensure_ascii=False),
        json.dumps({"text": "【功能主治】 没有 id"}, ensure_ascii=False),
        json.dumps({"id": "notext", "text": ""}),
        json.dumps(["not", "a", "record"]),
        json.dumps({"id": "cut", "text": "【功能主治】 被截断"}, ensure_ascii=False)[:20],
    ]
    (tmp_path / "x.jsonl").write_text("\n".join(lines), encoding="utf-8")
    res = load_cn_inserts(tmp_path / "x.jsonl")
    assert [lab.id for lab in res.labels] == ["cn-ok"]
    lab = res.labels[0]
    assert lab.title == "华法林钠片" and lab.generic_names == ["华法林钠片"] and lab.brand_names == ["可密定"]
    assert lab.manufacturer == "某某药业有限公司"
    assert [(s.key, s.name, s.text) for s in lab.sections] == [
        ("other", "通用名称", "华法林钠片"), ("other", "商品名称", "可密定"), ("indications", "适应症", "血栓。"),
        ("contraindications", "禁忌", "出血。"), ("interactions", "药物相互作用", "阿司匹林。"),
        ("other", "生产企业", "某某药业有限公司"), ("dosage", "用 法 用 量", "口服。"),
        ("warnings", "注意事项", "注意出血"),  # trailing U+FFFD of a cut multi-byte character dropped
    ]
    got = {k.record: k.reason for k in res.skipped}
    assert got == {
        "line 2 (noheads)": "no 【header】 sections in text",
        "line 3": "record has no id",
        "line 4 (notext)": "record has no text",
        "line 5": "record is a list, not a JSON object",
        "line 6": got["line 6"],
    }
    assert "truncated" in got["line 6"]
    assert all(k.file == "x.jsonl" for k in res.skipped)


# --------------------------------------------------------------------------------------------------------- DDInter
@pytest.fixture(scope="module")
def ddinter() -> GraphRecords:
    g, secs = _timed(load_ddinter, [DATA / "ddinter"])
    assert secs < 10, secs  # about 1-2 s on a quiet machine; the bound leaves room for a busy one
    return g


def test_ddinter_real_counts(ddinter: GraphRecords) -> None:
    raw_pairs: set[tuple[str, str]] = set()
    raw_drugs: set[str] = set()
    rows = 0
    for f in sorted((DATA / "ddinter").glob("ddinter*.csv")):
        with f.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                rows += 1
                raw_pairs.add(tuple(sorted((r["DDInterID_A"], r["DDInterID_B"]))))  # type: ignore[arg-type]
                raw_drugs.update((r["Drug_A"], r["Drug_B"]))
    assert (rows, len(raw_pairs), len(raw_drugs)) == (222_383, 160_235, 1_939)  # the README's figures
    # Drug node ids are base names, which merge DDInter's route variants ("Diclofenac", "Diclofenac (topical)",
    # "Diclofenac (ophthalmic)" → diclofenac) and salts (inorganic names such as "Aluminum hydroxide" stay whole):
    # 1,939 DDInter drugs → 1,834 nodes, and 160,235 DDInter pairs → 155,370 node pairs. 705 of those merged pairs
    # saw different levels (conflict=True, most severe kept); DDInter itself never gives one ID pair two levels.
    assert len(ddinter.nodes) == 1_834 and len(ddinter.edges) == 155_370
    assert not ddinter.skipped
    assert len(ddinter.files) == 8 and len(ddinter.fingerprint) == 40
    conflicts = [e for e in ddinter.edges if e.props["conflict"]]
    assert len(conflicts) == 705
    aliases = {n.id: n.props["aliases"] for n in ddinter.nodes}
    assert all(len(aliases[e.src]) > 1 or len(aliases[e.dst]) > 1 for e in conflicts)
    assert collections.Counter(e.props["level"] for e in ddinter.edges) == {
        "Moderate": 92_681, "Unknown": 29_789, "Major": 26_522, "Minor": 6_378}
    ids = set(aliases)
    for e in ddinter.edges:
        assert e.type == "INTERACTS_WITH" and e.src < e.dst and e.src in ids and e.dst in ids
        assert e.props["source"] == "ddinter" and e.props["level"] in LEVELS
        assert e.props["level"] == e.props["levels_seen"][0]
        assert e.id == f"INTERACTS_WITH:{e.src}|{e.dst}"
    nodes = {n.id: n for n in ddinter.nodes}
    assert nodes["warfarin"].name == "Warfarin" and nodes["warfarin"].props["sources"] == ["ddinter"]
    assert nodes["diclofenac"].name == "Diclofenac"
    assert nodes["diclofenac"].props["aliases"] == ["Diclofenac", "Diclofenac (ophthalmic)", "Diclofenac (topical)"]
    assert all(n.id == base_name(n.name) for n in ddinter.nodes)
    # a pair listed in several ATC files is one edge naming all of them
    assert max(len(e.props["sources"]) for e in ddinter.edges) > 1


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["DDInterID_A", "Drug_A", "DDInterID_B", "Drug_B", "Level"])
        w.writerows(rows)


def test_ddinter_merge_conflict_and_bad_rows(tmp_path: Path) -> None:
    _write_csv(tmp_path / "ddinter_downloads_code_A.csv", [
        ["DDInter1", "Warfarin", "DDInter2", "Aspirin", "Moderate"],
        ["DDInter1", "Warfarin", "", "", "Major"],  # row 3: missing drug
        ["DDInter3", "Simvastatin", "DDInter4", "Amiodarone", "Severe"],  # row 4: unknown level
        ["DDInter1", "Warfarin", "DDInter5", "Warfarin sodium", "Minor"],  # row 5: same drug id twice
        ["DDInter3", "Simvastatin", "DDInter4"],  # row 6: short row
        ["DDInter3", "Simvastatin", "DDInter4", "Amiodarone", "minor"],  # level case is normalised
    ])
    _write_csv(tmp_path / "ddinter_downloads_code_B.csv", [
        ["DDInter2", "Aspirin", "DDInter1", "Warfarin", "Major"],  # same pair, reversed, more severe
        ["DDInter4", "Amiodarone", "DDInter3", "Simvastatin", "Minor"],  # same pair, same level
    ])
    _write_csv(tmp_path / "other.csv", [["DDInter9", "X", "DDInter8", "Y", "Major"]])  # not a ddinter*.csv
    g = load_ddinter([tmp_path])
    assert [Path(f).name for f in g.files] == ["ddinter_downloads_code_A.csv", "ddinter_downloads_code_B.csv"]
    edges = {(e.src, e.dst): e.props for e in g.edges}
    assert edges == {
        ("aspirin", "warfarin"): {"level": "Major", "sources": ["ddinter_downloads_code_A.csv",
                                                                 "ddinter_downloads_code_B.csv"],
                                  "conflict": True, "levels_seen": ["Major", "Moderate"], "source": "ddinter"},
        ("amiodarone", "simvastatin"): {"level": "Minor", "sources": ["ddinter_downloads_code_A.csv",
                                                                       "ddinter_downloads_code_B.csv"],
                                        "conflict": False, "levels_seen": ["Minor"], "source": "ddinter"},
    }
    assert {n.id: n.props["ddinter_id"] for n in g.nodes} == {
        "warfarin": "DDInter1", "aspirin": "DDInter2", "simvastatin": "DDInter3", "amiodarone": "DDInter4"}
    got = {(k.file, k.record): k.reason for k in g.skipped}
    assert got[("ddinter_downloads_code_A.csv", "3")] == "missing drug name"
    assert got[("ddinter_downloads_code_A.csv", "4")] == "unknown level 'Severe'"
    assert got[("ddinter_downloads_code_A.csv", "5")].startswith("self-interaction")
    assert got[("ddinter_downloads_code_A.csv", "6")] == "expected 5 fields, got 3"
    assert len(g.skipped) == 4
    # the fingerprint follows the content of the files read
    assert load_ddinter([tmp_path]).fingerprint == g.fingerprint
    _write_csv(tmp_path / "ddinter_downloads_code_B.csv", [["DDInter2", "Aspirin", "DDInter1", "Warfarin", "Minor"]])
    assert load_ddinter([tmp_path]).fingerprint != g.fingerprint
    # files can be given one by one
    one = load_ddinter([tmp_path / "ddinter_downloads_code_B.csv"])
    assert len(one.edges) == 1 and one.edges[0].props["level"] == "Minor"


# ---------------------------------------------------------------------------------------------------------- CMedKG
@pytest.fixture(scope="module")
def cmedkg() -> GraphRecords:
    g, secs = _timed(load_cmedkg, DATA / "cmedkg")
    assert secs < 20, secs  # about 2-3 s on a quiet machine
    return g


def test_cmedkg_real_counts(cmedkg: GraphRecords) -> None:
    raw: collections.Counter[str] = collections.Counter()
    for f in (DATA / "cmedkg" / "rel").glob("*.csv"):
        with f.open(newline="", encoding="utf-8") as fh:
            raw[f.stem.upper()] = sum(1 for _ in csv.DictReader(fh))
    assert sum(raw.values()) == 294_807
    assert not cmedkg.skipped and len(cmedkg.fingerprint) == 40 and len(cmedkg.files) == 17
    nodes = collections.Counter(n.type for n in cmedkg.nodes)
    # 3,828 drug entity names meet at 3,008 base names (盐酸左氧氟沙星片, 左氧氟沙星滴眼液 … → 左氧氟沙星)
    assert nodes == {"Producer": 17_201, "Disease": 8_806, "Symptom": 5_998, "Food": 4_870, "Check": 3_353,
                     "Drug": 3_008, "Cure": 544, "Department": 54}
    edges = collections.Counter(e.type for e in cmedkg.edges)
    for etype, n in raw.items():
        if etype in ("RECOMMAND_DRUG", "COMMON_DRUG"):
            assert edges[etype] < n  # edges to drug variants that share a base name are kept once
        else:
            assert edges[etype] == n, etype
    assert edges["RECOMMAND_DRUG"] == 53_648 and edges["COMMON_DRUG"] == 14_194
    assert sum(edges.values()) == 288_537
    ids = {(n.type, n.id) for n in cmedkg.nodes}
    keys = set()
    for e in cmedkg.edges:
        assert (e.src_type, e.src) in ids and (e.dst_type, e.dst) in ids
        assert (e.src_type, e.dst_type) == RELATIONS[e.type] and e.props == {"source": "cmedkg"}
        keys.add((e.type, e.src, e.dst))
    assert len(keys) == len(cmedkg.edges)


def test_cmedkg_drug_ids_are_base_names(cmedkg: GraphRecords) -> None:
    drugs = {n.id: n for n in cmedkg.nodes if n.type == "Drug"}
    for n in drugs.values():
        assert all(base_name(a) == n.id or (not base_name(a) and a == n.id) for a in n.props["aliases"])
        assert n.name in n.props["aliases"] and n.props["sources"] == ["cmedkg"]
    lev = drugs["左氧氟沙星"]
    assert {"盐酸左氧氟沙星片", "左氧氟沙星滴眼液"} <= set(lev.props["aliases"])
    disease = next(n for n in cmedkg.nodes if n.type == "Disease")
    assert disease.id == disease.name


def test_cmedkg_missing_targets_bad_rows_and_repeats(tmp_path: Path) -> None:
    (tmp_path / "entity").mkdir()
    (tmp_path / "rel").mkdir()
    (tmp_path / "entity" / "drug.csv").write_text("vid,name\n阿莫西林胶囊,阿莫西林胶囊\n阿莫西林片,阿莫西林片\n",
                                                  encoding="utf-8")
    (tmp_path / "entity" / "symptom.csv").write_text("vid,name\n发热,发热\n", encoding="utf-8")
    (tmp_path / "entity" / "planet.csv").write_text("vid,name\n火星,火星\n", encoding="utf-8")
    (tmp_path / "rel" / "recommand_drug.csv").write_text(
        "src_id,tag_id\n肺炎,阿莫西林胶囊\n肺炎,阿莫西林片\n肺炎,头孢克肟片\n,阿莫西林片\n肺炎,阿莫西林胶囊\n",
        encoding="utf-8")
    (tmp_path / "rel" / "has_symptom.csv").write_text("src_id,tag_id\n肺炎,发热\n肺炎,咳嗽\n", encoding="utf-8")
    (tmp_path / "rel" / "orbits.csv").write_text("src_id,tag_id\n火星,太阳\n", encoding="utf-8")
    g = load_cmedkg(tmp_path)
    nodes = {(n.type, n.id): n for n in g.nodes}
    assert set(nodes) == {
        ("Drug", "阿莫西林"),
        ("Drug", "头孢克肟"),
        ("Symptom", "发热"),
        ("Symptom", "咳嗽"),
        ("Disease", "肺炎"),
    }
    assert nodes[("Drug", "阿莫西林")].props["aliases"] == ["阿莫西林片", "阿莫西林胶囊"]
    assert sorted((e.type, e.src, e.dst) for e in g.edges) == [
        ("HAS_SYMPTOM", "肺炎", "发热"),
        ("HAS_SYMPTOM", "肺炎", "咳嗽"),  # 咳嗽: missing entity, node created
        ("RECOMMAND_DRUG", "肺炎", "头孢克肟"),
        ("RECOMMAND_DRUG", "肺炎", "阿莫西林"),
    ]
    got = {(k.file, k.record): k.reason for k in g.skipped}
    assert got == {
        ("entity/planet.csv", "*"): "unknown entity type 'planet'",
        ("rel/orbits.csv", "*"): "unknown relation 'orbits'",
        ("rel/recommand_drug.csv", "5"): "empty src_id or tag_id",
    }


def test_cmedkg_relations_match_graph_schema() -> None:
    from graph.store import EDGE_TYPES

    for etype, ends in RELATIONS.items():
        assert EDGE_TYPES[etype] == ends
