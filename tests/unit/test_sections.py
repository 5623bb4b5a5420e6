"""The canonical section vocabulary and its three mappings (openFDA fields, SPL LOINC codes, Chinese headers)."""

from __future__ import annotations

import pytest

from kb_loaders.sections import (
    CANONICAL_SECTIONS,
    LOINC,
    OPENFDA_FIELDS,
    SECTION_TITLES,
    ZH_HEADERS,
    loinc_section,
    openfda_section,
    zh_section,
)


def test_every_mapping_targets_a_canonical_key() -> None:
    for table in (OPENFDA_FIELDS, LOINC, ZH_HEADERS):
        assert set(table.values()) <= set(CANONICAL_SECTIONS)
    assert set(SECTION_TITLES) == set(CANONICAL_SECTIONS)
    for titles in SECTION_TITLES.values():
        assert titles["en"] and titles["zh"]


@pytest.mark.parametrize(("field", "key"), [
    ("indications_and_usage", "indications"),
    ("purpose", "indications"),
    ("dosage_and_administration", "dosage"),
    ("contraindications", "contraindications"),
    ("do_not_use", "contraindications"),
    ("warnings_and_cautions", "warnings"),
    ("warnings", "warnings"),
    ("boxed_warning", "boxed_warning"),
    ("adverse_reactions", "adverse_reactions"),
    ("drug_interactions", "interactions"),
    ("pregnancy", "pregnancy"),
    ("nursing_mothers", "lactation"),
    ("pediatric_use", "pediatric"),
    ("geriatric_use", "geriatric"),
    ("overdosage", "overdosage"),
    ("mechanism_of_action", "pharmacology"),
    ("how_supplied", "storage"),
    ("active_ingredient", "ingredients"),
    ("inactive_ingredient", "ingredients"),
    ("description", "other"),
    ("some_new_text_field", "other"),  # unknown text fields are kept, as "other"
])
def test_openfda_fields(field: str, key: str) -> None:
    assert openfda_section(field) == key


@pytest.mark.parametrize("field", [
    "set_id", "id", "version", "effective_time", "openfda", "spl_id", "package_label_principal_display_panel",
    "drug_interactions_table", "dosage_and_administration_table", "adverse_reactions_table",
])
def test_openfda_non_sections(field: str) -> None:
    assert openfda_section(field) is None


@pytest.mark.parametrize(("code", "key"), [
    ("34067-9", "indications"),
    ("55105-1", "indications"),  # OTC purpose
    ("55106-9", "ingredients"),  # OTC active ingredient (cough.xml: "OTC - ACTIVE INGREDIENT SECTION")
    ("51727-6", "ingredients"),
    ("34068-7", "dosage"),
    ("43678-2", "dosage"),
    ("34070-3", "contraindications"),
    ("50570-1", "contraindications"),
    ("43685-7", "warnings"),
    ("34071-1", "warnings"),
    ("42232-9", "warnings"),
    ("34066-1", "boxed_warning"),
    ("34084-4", "adverse_reactions"),
    ("34073-7", "interactions"),
    ("42228-7", "pregnancy"),
    ("43684-0", "pregnancy"),
    ("34080-2", "lactation"),
    ("34081-0", "pediatric"),
    ("34082-8", "geriatric"),
    ("34088-5", "overdosage"),
    ("34090-1", "pharmacology"),
    ("43682-4", "pharmacology"),
    ("34069-5", "storage"),
    ("44425-7", "storage"),
    ("34089-3", "other"),
    ("42229-5", "other"),  # SPL unclassified: real text, not furniture
    ("34092-7", "other"),  # clinical studies: not in the table → other
])
def test_loinc_codes(code: str, key: str) -> None:
    assert loinc_section(code) == key


@pytest.mark.parametrize("code", [None, "", "48780-1", "51945-4"])
def test_loinc_furniture(code: str | None) -> None:
    assert loinc_section(code) is None


@pytest.mark.parametrize(("header", "key"), [
    ("适应症", "indications"),
    ("适应证", "indications"),
    ("功能主治", "indications"),
    ("功效", "indications"),
    ("用法用量", "dosage"),
    ("用 法 用 量", "dosage"),  # spaces inside a header are ignored
    (" 用法与用量 ", "dosage"),
    ("禁忌", "contraindications"),
    ("禁 忌", "contraindications"),
    ("注意事项", "warnings"),
    ("不良反应", "adverse_reactions"),
    ("相互作用", "interactions"),
    ("药物相互作用", "interactions"),
    ("孕妇及哺乳期妇女用药", "pregnancy"),
    ("儿童用药", "pediatric"),
    ("儿童用药注意", "pediatric"),  # known prefix
    ("老年用药", "geriatric"),
    ("药物过量", "overdosage"),
    ("药理毒理", "pharmacology"),
    ("疗效", "pharmacology"),
    ("贮藏", "storage"),
    ("成分", "ingredients"),
    ("有 效 期", "other"),
    ("批准文号", "other"),
    ("制药公司", "other"),
    ("22", "other"),  # numeric scraping artefacts
    ("43", "other"),
    ("完全没见过的标题", "other"),
])
def test_chinese_headers(header: str, key: str) -> None:
    assert zh_section(header) == key
