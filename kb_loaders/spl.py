"""DailyMed Structured Product Labeling (HL7 SPL XML, namespace urn:hl7-org:v3) → Labels.

Sections: each top-level section of the structured body becomes one Section keyed by its LOINC code
(sections.loinc_section); its title, its text and the text of all nested subsections are flattened into it in
document order, so subsection headings ("5.1 Skeletal Muscle") stay in front of their own text. One exception, so
that population-specific text is findable under its own key: a nested section whose LOINC code maps to a different
specific key (e.g. 8.3 Nursing Mothers → lactation, 8.4 Pediatric Use → pediatric, OTC "Do not use" →
contraindications) is split out as its own Section, placed right after its parent, when the parent is a container
section (warnings/precautions, use in specific populations, clinical pharmacology, other). Subsections of
indications, dosage, contraindications, boxed warning, adverse reactions, interactions and storage always stay
inline (4.3 Pregnancy under CONTRAINDICATIONS is a contraindication; a boxed paragraph inside DOSAGE is dosage text).
Either way every piece of text lands in exactly one Section. Highlights excerpts (<excerpt>), which summarise the
full text again, and the product-data and package-label sections are not section text.
"""

from __future__ import annotations

import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kb_loaders.files import LabelCollector, collapse_ws, dedup, iter_files
from kb_loaders.model import Label, LoadResult, Section
from kb_loaders.openfda import format_date, label_title
from kb_loaders.sections import loinc_section

log = logging.getLogger(__name__)

HL7 = "urn:hl7-org:v3"
UNII_SYSTEM = "2.16.840.1.113883.4.9"
# parents whose differently-coded subsections become their own Section (see module docstring)
SPLIT_PARENTS = frozenset({"warnings", "pregnancy", "pharmacology", "other"})
# elements after which a space is needed so that words of neighbouring blocks/cells never run together
BLOCK_TAGS = frozenset({
    "paragraph", "item", "list", "td", "th", "tr", "table", "thead", "tbody", "tfoot", "caption", "title", "br",
    "footnote", "text", "section", "component", "col", "colgroup", "renderMultiMedia", "suffix",
})
# the PLR highlights boilerplate that opens many document titles; what follows it names the product
_HIGHLIGHTS_BOILERPLATE = re.compile(
    r"^these highlights do not include all the information needed to use .{0,200}? safely and effectively\.?\s*"
    r"(see full prescribing information for [^.]{0,200}\.\s*)?",
    re.IGNORECASE,
)
SKIP_IN_TEXT = frozenset({"excerpt", "id", "code", "effectiveTime", "subject", "subjectOf", "observationMedia"})


class SplError(ValueError):
    pass


def load_spl(path: Path, limit: int | None = None) -> LoadResult:
    """Load one SPL XML file or every *.xml file under a directory (sorted by name)."""
    path = Path(path)
    col = LabelCollector(limit)
    files = iter_files(path, (".xml",))
    if not files:
        col.skip(str(path), "*", "no SPL .xml files found")
    for f in files:
        if col.full:
            break
        try:
            data = f.read_bytes()
        except OSError as e:
            col.skip(f.name, "*", f"unreadable file: {e}")
            continue
        try:
            label = parse_spl(data, f.name)
        except ET.ParseError as e:
            col.skip(f.name, "*", f"malformed XML: {e}")
            continue
        except SplError as e:
            col.skip(f.name, "*", str(e))
            continue
        col.add(label)
    res = col.result()
    log.info("SPL %s: %d labels, %d skipped", path, len(res.labels), len(res.skipped))
    return res


def _local(tag: object) -> str:
    if not isinstance(tag, str):  # comments, processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element, name: str) -> Iterator[ET.Element]:
    for c in el:
        if _local(c.tag) == name:
            yield c


def _attr(el: ET.Element | None, name: str) -> str | None:
    if el is None:
        return None
    v = el.get(name)
    return v.strip() if v and v.strip() else None


def _text_parts(el: ET.Element, out: list[str]) -> None:
    """Text of an element without markup; blocks (paragraphs, cells, list items, line breaks) are space-separated."""
    name = _local(el.tag)
    block = name in BLOCK_TAGS
    if block:
        out.append(" ")
    if el.text:
        out.append(el.text)
    for c in el:
        if _local(c.tag) not in SKIP_IN_TEXT and _local(c.tag):
            _text_parts(c, out)
        if c.tail:
            out.append(c.tail)
    if block:
        out.append(" ")


def plain_text(el: ET.Element | None) -> str:
    if el is None:
        return ""
    out: list[str] = []
    _text_parts(el, out)
    return collapse_ws("".join(out))


@dataclass
class _Buf:
    key: str
    name: str
    parts: list[str] = field(default_factory=list)


def _section_name(sec: ET.Element, code: str | None) -> str:
    title = plain_text(_child(sec, "title"))
    if not title:
        dn = _attr(_child(sec, "code"), "displayName") or ""
        title = dn[: -len(" SECTION")] if dn.upper().endswith(" SECTION") else dn
    return " ".join(x for x in (code, title) if x) or "section"


def _fill(sec: ET.Element, buf: _Buf, top_key: str, out: list[_Buf]) -> None:
    """Append a section's title, text and nested sections (in document order) to buf; split-outs go to out."""
    for c in sec:
        name = _local(c.tag)
        if name == "title" or name == "text":
            t = plain_text(c)
            if t:
                buf.parts.append(t)
        elif name == "component":
            for sub in _children(c, "section"):
                code = _attr(_child(sub, "code"), "code")
                key = loinc_section(code)
                if key not in (None, "other", "boxed_warning") and key != top_key and top_key in SPLIT_PARENTS:
                    assert key is not None
                    _emit(sub, key, _section_name(sub, code), out)
                else:
                    _fill(sub, buf, top_key, out)


def _emit(sec: ET.Element, key: str, name: str, out: list[_Buf]) -> None:
    buf = _Buf(key, name)
    out.append(buf)  # before any split-out children, so they follow their parent
    _fill(sec, buf, key, out)


def _sections(body: ET.Element) -> list[Section]:
    bufs: list[_Buf] = []
    for comp in _children(body, "component"):
        for sec in _children(comp, "section"):
            code = _attr(_child(sec, "code"), "code")
            key = loinc_section(code) if code else "other"  # a section without a code still has text
            if key is None:
                continue  # product data elements, package label
            _emit(sec, key, _section_name(sec, code), bufs)
    sections = []
    for b in bufs:
        text = collapse_ws(" ".join(b.parts))
        if text:
            sections.append(Section(key=b.key, name=b.name, text=text))
    return sections


def _actives(product: ET.Element) -> list[tuple[str, str | None]]:
    """(substance name, UNII) of a product's active ingredients (new schema ingredient[@classCode=ACT*] or the
    pre-2009 activeIngredient/activeIngredientSubstance)."""
    out: list[tuple[str, str | None]] = []
    for ing in product:
        name = _local(ing.tag)
        if name == "ingredient" and (ing.get("classCode") or "").startswith("ACT"):
            sub = _child(ing, "ingredientSubstance")
        elif name == "activeIngredient":
            sub = _child(ing, "activeIngredientSubstance")
        else:
            continue
        if sub is None:
            continue
        n = plain_text(_child(sub, "name"))
        code = _child(sub, "code")
        unii = _attr(code, "code") if code is not None and code.get("codeSystem") == UNII_SYSTEM else None
        if n:
            out.append((n, unii))
    return out


def _products(root: ET.Element) -> tuple[list[str], list[str], list[str], list[str]]:
    """(brand names, generic names, active substance names, UNIIs) of the products described by the document.
    Kit parts count only when they have an active ingredient (Humira's pen does, its alcohol swab does not)."""
    brands: list[str] = []
    generics: list[str] = []
    substances: list[str] = []
    uniis: list[str] = []
    for el in root.iter():
        kind = _local(el.tag)
        if kind not in ("manufacturedProduct", "manufacturedMedicine", "partProduct"):
            continue
        actives = _actives(el)
        if kind == "partProduct" and not actives:
            continue
        n = plain_text(_child(el, "name"))
        if n:
            brands.append(n)
        for gen_holder in _children(el, "asEntityWithGeneric"):
            for gm in _children(gen_holder, "genericMedicine"):
                g = plain_text(_child(gm, "name"))
                if g:
                    generics.append(g)
        for sname, unii in actives:
            substances.append(sname)
            if unii:
                uniis.append(unii)
    return dedup(brands), dedup(generics), dedup(substances), dedup(uniis)


def _manufacturer(root: ET.Element) -> str | None:
    author = _child(root, "author")
    ent = _child(author, "assignedEntity") if author is not None else None
    org = _child(ent, "representedOrganization") if ent is not None else None
    name = plain_text(_child(org, "name")) if org is not None else ""
    return name or None


def parse_spl(data: bytes, source_file: str) -> Label:
    """One SPL document → Label; raises ET.ParseError for malformed XML and SplError for a non-SPL document."""
    root = ET.fromstring(data)
    if _local(root.tag) != "document":
        raise SplError(f"not an SPL document (root element <{_local(root.tag)}>)")
    set_id = _attr(_child(root, "setId"), "root") or _attr(_child(root, "id"), "root")
    label_id = set_id or "h-" + hashlib.sha1(data).hexdigest()[:20]
    version = _attr(_child(root, "versionNumber"), "value")
    brands, generics, substances, uniis = _products(root)
    manufacturer = _manufacturer(root)

    body = None
    comp = _child(root, "component")
    if comp is not None:
        body = _child(comp, "structuredBody")
    if body is None:
        raise SplError("no structuredBody (not a structured product label?)")
    sections = _sections(body)
    if not sections:
        raise SplError("no section text")

    doc_kind = _attr(_child(root, "code"), "displayName") or "SPL document"
    product_title = label_title(brands[0] if brands else None, generics[0] if generics else None, manufacturer,
                                substances[0] if substances else f"{doc_kind.title()} {label_id}")
    title = _HIGHLIGHTS_BOILERPLATE.sub("", plain_text(_child(root, "title"))).strip()
    if not title:
        title = product_title
    else:
        lowered = title.lower()
        if not any(n.lower() in lowered for n in (*brands, *generics, *substances)):
            title = f"{title}: {product_title}"  # e.g. "Drug Facts" says nothing about which drug
    return Label(
        id=label_id,
        title=title,
        language="en",
        source="spl",
        source_file=source_file,
        sections=sections,
        version=version,
        effective_date=format_date(_attr(_child(root, "effectiveTime"), "value")),
        generic_names=generics,
        brand_names=brands,
        substance_names=substances,
        unii=uniis,
        manufacturer=manufacturer,
        product_type=doc_kind[: -len(" LABEL")] if doc_kind.upper().endswith(" LABEL") else doc_kind,
    )
