"""openFDA /drug/label records → Labels.

Reads the bulk download shape (a zip holding JSON files `{"meta": ..., "results": [record, ...]}`), a plain JSON
file of that shape or a bare list of records, and JSON Lines (one record a line). Every section field is a list of
strings; `*_table` fields (HTML tables that repeat their section's text) and metadata are not sections.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

from kb_loaders.files import LabelCollector, collapse_ws, dedup, iter_files
from kb_loaders.model import Label, LoadResult, Section
from kb_loaders.names import norm_name
from kb_loaders.sections import openfda_section

log = logging.getLogger(__name__)

SUFFIXES = (".json.zip", ".zip", ".json", ".jsonl", ".ndjson")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")


class RecordError(ValueError):
    """A record that cannot become a label; the message is the reason reported."""


def load_openfda(path: Path, limit: int | None = None) -> LoadResult:
    """Load openFDA drug-label records from a file or every openFDA file in a directory (sorted by name)."""
    path = Path(path)
    col = LabelCollector(limit)
    files = iter_files(path, SUFFIXES)
    if not files:
        col.skip(str(path), "*", "no openFDA files (.json.zip, .json, .jsonl) found")
    for f in files:
        if col.full:
            break
        name = f.name.lower()
        try:
            if name.endswith(".zip"):
                _load_zip(f, col)
            elif name.endswith((".jsonl", ".ndjson")):
                _load_lines(f.read_text(encoding="utf-8-sig", errors="replace"), f.name, col)
            else:
                _load_document(f.read_bytes(), f.name, col)
        except (OSError, zipfile.BadZipFile) as e:
            col.skip(f.name, "*", f"unreadable file: {e}")
    res = col.result()
    log.info("openFDA %s: %d labels, %d skipped", path, len(res.labels), len(res.skipped))
    return res


def _load_zip(f: Path, col: LabelCollector) -> None:
    with zipfile.ZipFile(f) as z:
        members = sorted(m for m in z.namelist() if not m.endswith("/"))
        if not members:
            col.skip(f.name, "*", "zip archive is empty")
        for m in members:
            if col.full:
                return
            source = f"{f.name}!{m}"
            if m.lower().endswith((".jsonl", ".ndjson")):
                _load_lines(z.read(m).decode("utf-8-sig", errors="replace"), source, col)
            elif m.lower().endswith(".json"):
                _load_document(z.read(m), source, col)
            else:
                col.skip(source, "*", "not a JSON member")


def _load_document(data: bytes, source: str, col: LabelCollector) -> None:
    try:
        doc = json.loads(data.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as e:
        col.skip(source, "*", f"invalid JSON: {e}")
        return
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        records = doc["results"]
    elif isinstance(doc, list):
        records = doc
    elif isinstance(doc, dict) and ("set_id" in doc or "openfda" in doc):
        records = [doc]  # a single record on its own
    else:
        col.skip(source, "*", "JSON is neither {\"results\": [...]} nor a list of records")
        return
    for i, rec in enumerate(records):
        if col.full:
            return
        _add_record(rec, source, f"#{i}", col)


def _load_lines(text: str, source: str, col: LabelCollector) -> None:
    for n, line in enumerate(text.split("\n"), start=1):
        if col.full:
            return
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            col.skip(source, f"line {n}", f"invalid JSON line (truncated?): {e}")
            continue
        _add_record(rec, source, f"line {n}", col)


def _add_record(rec: Any, source: str, where: str, col: LabelCollector) -> None:
    try:
        label = record_to_label(rec, source)
    except RecordError as e:
        rid = rec.get("set_id") if isinstance(rec, dict) and isinstance(rec.get("set_id"), str) else None
        col.skip(source, f"{where} ({rid})" if rid else where, str(e))
        return
    col.add(label)


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return []


def format_date(value: Any) -> str | None:
    """'20230115' (or '20230115123000') → '2023-01-15'; anything else → None."""
    if not isinstance(value, str | int):
        return None
    m = _DATE.match(str(value).strip())
    if not m:
        return None
    y, mo, d = m.groups()
    if not ("01" <= mo <= "12" and "01" <= d <= "31"):
        return None
    return f"{y}-{mo}-{d}"


def label_title(brand: str | None, generic: str | None, manufacturer: str | None, fallback: str) -> str:
    """'Coumadin (WARFARIN SODIUM) — Bristol-Myers Squibb'; the generic is left out when it only repeats the brand."""
    if brand and generic and norm_name(brand) != norm_name(generic):
        name = f"{brand} ({generic})"
    else:
        name = brand or generic or fallback
    return f"{name} — {manufacturer}" if manufacturer else name


def record_to_label(rec: Any, source_file: str) -> Label:
    """One openFDA record → Label; raises RecordError with the reason when it cannot be one."""
    if not isinstance(rec, dict):
        raise RecordError(f"record is a {type(rec).__name__}, not a JSON object")
    ofda = rec.get("openfda")
    if not isinstance(ofda, dict):
        ofda = {}
    set_id = rec.get("set_id") if isinstance(rec.get("set_id"), str) else None
    if not (set_id and set_id.strip()):
        spl_set = _str_list(ofda.get("spl_set_id"))
        set_id = spl_set[0] if spl_set else None
    if set_id and set_id.strip():
        label_id = set_id.strip()
    elif isinstance(rec.get("id"), str) and rec["id"].strip():
        blob = json.dumps(rec, sort_keys=True, ensure_ascii=False).encode()
        label_id = "h-" + hashlib.sha1(blob).hexdigest()[:20]
    else:
        raise RecordError("no set_id, openfda.spl_set_id or id")

    sections: list[Section] = []
    for field_name, value in rec.items():
        key = openfda_section(field_name)
        if key is None:
            continue
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise RecordError(f"section field {field_name!r} is not a list of strings ({type(value).__name__})")
        text = collapse_ws(" ".join(value))
        if text:
            sections.append(Section(key=key, name=field_name, text=text))
    if not sections:
        raise RecordError("no section text")

    generic = dedup(_str_list(ofda.get("generic_name")))
    brand = dedup(_str_list(ofda.get("brand_name")))
    substance = dedup(_str_list(ofda.get("substance_name")))
    manufacturer = next(iter(dedup(_str_list(ofda.get("manufacturer_name")))), None)
    product_type = next(iter(dedup(_str_list(ofda.get("product_type")))), None)
    version = rec.get("version")
    fallback = ", ".join(substance) if substance else f"Drug label {label_id}"
    return Label(
        id=label_id,
        title=label_title(brand[0] if brand else None, generic[0] if generic else None, manufacturer, fallback),
        language="en",
        source="openfda",
        source_file=source_file,
        sections=sections,
        version=str(version).strip() if isinstance(version, str | int) and str(version).strip() else None,
        effective_date=format_date(rec.get("effective_time")),
        generic_names=generic,
        brand_names=brand,
        substance_names=substance,
        rxcui=dedup(_str_list(ofda.get("rxcui"))),
        unii=dedup(_str_list(ofda.get("unii"))),
        manufacturer=manufacturer,
        product_type=product_type,
    )

