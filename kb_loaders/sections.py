"""One canonical section vocabulary, mapped from openFDA fields, SPL LOINC codes and Chinese 【headers】."""

from __future__ import annotations

import re

CANONICAL_SECTIONS: tuple[str, ...] = (
    "indications",
    "dosage",
    "contraindications",
    "warnings",
    "boxed_warning",
    "adverse_reactions",
    "interactions",
    "pregnancy",
    "lactation",
    "pediatric",
    "geriatric",
    "overdosage",
    "pharmacology",
    "storage",
    "ingredients",
    "other",
)

# openFDA /drug/label field → canonical key. Fields not listed (ids, tables, openfda block) are not sections;
# unknown text fields map to "other" so nothing is lost.
OPENFDA_FIELDS: dict[str, str] = {
    "indications_and_usage": "indications",
    "purpose": "indications",
    "dosage_and_administration": "dosage",
    "dosage_forms_and_strengths": "dosage",
    "contraindications": "contraindications",
    "do_not_use": "contraindications",
    "warnings_and_cautions": "warnings",
    "warnings": "warnings",
    "precautions": "warnings",
    "general_precautions": "warnings",
    "ask_doctor": "warnings",
    "ask_doctor_or_pharmacist": "warnings",
    "stop_use": "warnings",
    "when_using": "warnings",
    "keep_out_of_reach_of_children": "warnings",
    "boxed_warning": "boxed_warning",
    "adverse_reactions": "adverse_reactions",
    "drug_interactions": "interactions",
    "pregnancy": "pregnancy",
    "teratogenic_effects": "pregnancy",
    "pregnancy_or_breast_feeding": "pregnancy",
    "use_in_specific_populations": "pregnancy",
    "nursing_mothers": "lactation",
    "lactation": "lactation",
    "pediatric_use": "pediatric",
    "geriatric_use": "geriatric",
    "overdosage": "overdosage",
    "clinical_pharmacology": "pharmacology",
    "mechanism_of_action": "pharmacology",
    "pharmacodynamics": "pharmacology",
    "pharmacokinetics": "pharmacology",
    "storage_and_handling": "storage",
    "how_supplied": "storage",
    "active_ingredient": "ingredients",
    "inactive_ingredient": "ingredients",
    "description": "other",
    "spl_product_data_elements": "other",
}
# Fields that are never sections (metadata, or HTML tables that duplicate the text of their section).
OPENFDA_NON_SECTIONS: frozenset[str] = frozenset(
    {"set_id", "id", "version", "effective_time", "openfda", "spl_id", "package_label_principal_display_panel"}
)

# SPL LOINC section codes → canonical key.
LOINC: dict[str, str] = {
    "34067-9": "indications",
    "55105-1": "indications",  # OTC purpose
    "34068-7": "dosage",
    "43678-2": "dosage",  # dosage forms and strengths
    "34070-3": "contraindications",
    "50570-1": "contraindications",  # OTC do not use
    "43685-7": "warnings",
    "34071-1": "warnings",
    "42232-9": "warnings",  # precautions
    "34072-9": "warnings",  # general precautions
    "50569-3": "warnings",  # ask doctor
    "50568-5": "warnings",  # ask doctor or pharmacist
    "50567-7": "warnings",  # when using
    "50566-9": "warnings",  # stop use
    "50565-1": "warnings",  # keep out of reach of children
    "34066-1": "boxed_warning",
    "34084-4": "adverse_reactions",
    "34073-7": "interactions",
    "42228-7": "pregnancy",
    "34077-8": "pregnancy",  # teratogenic effects
    "53414-9": "pregnancy",  # pregnancy or breast feeding (OTC)
    "43684-0": "pregnancy",  # use in specific populations
    "34080-2": "lactation",
    "77290-5": "lactation",
    "34081-0": "pediatric",
    "34082-8": "geriatric",
    "34088-5": "overdosage",
    "34090-1": "pharmacology",
    "43679-0": "pharmacology",  # mechanism of action
    "43681-6": "pharmacology",  # pharmacodynamics
    "43682-4": "pharmacology",  # pharmacokinetics
    "34069-5": "storage",  # how supplied
    "44425-7": "storage",  # storage and handling
    "55106-9": "ingredients",  # OTC active ingredient
    "51727-6": "ingredients",  # inactive ingredient
    "34089-3": "other",  # description
    "42229-5": "other",  # SPL unclassified (nested ones stay inside their parent section)
}
# LOINC codes that are document furniture, not label content. SPL unclassified (42229-5) is not furniture: it
# carries numbered subsections (1.1, 5.2, ...) and, at top level in older labels, real text; it maps to "other".
LOINC_SKIP: frozenset[str] = frozenset({"48780-1", "51945-4"})  # product data elements, package label

# Chinese package insert headers (without 【】) → canonical key. Matching is on the header text after removing
# spaces; unknown headers map to "other" and keep their name.
ZH_HEADERS: dict[str, str] = {
    "适应症": "indications",
    "适应证": "indications",
    "功能主治": "indications",
    "功效": "indications",
    "主治": "indications",
    "作用类别": "pharmacology",
    "用法用量": "dosage",
    "用法与用量": "dosage",
    "禁忌": "contraindications",
    "禁忌症": "contraindications",
    "禁忌证": "contraindications",
    "注意事项": "warnings",
    "警告": "warnings",
    "警示语": "boxed_warning",
    "黑框警告": "boxed_warning",
    "不良反应": "adverse_reactions",
    "药物相互作用": "interactions",
    "相互作用": "interactions",
    "孕妇及哺乳期妇女用药": "pregnancy",
    "孕妇用药": "pregnancy",
    "哺乳期妇女用药": "lactation",
    "儿童用药": "pediatric",
    "老年用药": "geriatric",
    "老年患者用药": "geriatric",
    "药物过量": "overdosage",
    "药理作用": "pharmacology",
    "药理毒理": "pharmacology",
    "药代动力学": "pharmacology",
    "疗效": "pharmacology",
    "贮藏": "storage",
    "储藏": "storage",
    "贮存": "storage",
    "成分": "ingredients",
    "主要成分": "ingredients",
    "规格": "other",
    "性状": "other",
    # metadata headers seen in real inserts: kept as "other" sections (names/company also fill Label fields)
    "药品名称": "other",
    "通用名称": "other",
    "药品商品名称": "other",
    "商品名称": "other",
    "英文名称": "other",
    "汉语拼音": "other",
    "批准文号": "other",
    "制药公司": "other",
    "生产企业": "other",
    "生产厂家": "other",
    "剂型": "other",
    "药品包装": "other",
    "包装": "other",
    "有效期": "other",
    "执行标准": "other",
    "适用科室": "other",
    "临床试验": "other",
}

# Human titles for each canonical key, used in answers and the UI.
SECTION_TITLES: dict[str, dict[str, str]] = {
    "indications": {"en": "Indications", "zh": "适应症"},
    "dosage": {"en": "Dosage and administration", "zh": "用法用量"},
    "contraindications": {"en": "Contraindications", "zh": "禁忌"},
    "warnings": {"en": "Warnings and precautions", "zh": "注意事项"},
    "boxed_warning": {"en": "Boxed warning", "zh": "黑框警告"},
    "adverse_reactions": {"en": "Adverse reactions", "zh": "不良反应"},
    "interactions": {"en": "Drug interactions", "zh": "药物相互作用"},
    "pregnancy": {"en": "Pregnancy", "zh": "孕妇用药"},
    "lactation": {"en": "Lactation", "zh": "哺乳期用药"},
    "pediatric": {"en": "Pediatric use", "zh": "儿童用药"},
    "geriatric": {"en": "Geriatric use", "zh": "老年用药"},
    "overdosage": {"en": "Overdosage", "zh": "药物过量"},
    "pharmacology": {"en": "Clinical pharmacology", "zh": "药理作用"},
    "storage": {"en": "Storage and how supplied", "zh": "贮藏"},
    "ingredients": {"en": "Ingredients", "zh": "成分"},
    "other": {"en": "Other", "zh": "其他"},
}


def openfda_section(field_name: str) -> str | None:
    """Canonical key for an openFDA field; None for metadata and *_table fields."""
    if field_name in OPENFDA_NON_SECTIONS or field_name.endswith("_table"):
        return None
    return OPENFDA_FIELDS.get(field_name, "other")


def loinc_section(code: str | None) -> str | None:
    if not code or code in LOINC_SKIP:
        return None
    return LOINC.get(code, "other")


def zh_section(header: str) -> str:
    h = re.sub(r"\s+", "", header)
    if h in ZH_HEADERS:
        return ZH_HEADERS[h]
    for k, v in ZH_HEADERS.items():  # e.g. 【儿童用药注意】, 【不良反应与注意事项】: first known prefix wins
        if h.startswith(k):
            return v
    return "other"
