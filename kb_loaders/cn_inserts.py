"""Chinese package inserts (JSONL `{"id", "text"}`, sections marked by 【header】) → Labels.

A 【...】 is a section header when its text (spaces removed) is a known header or starts with one
(sections.ZH_HEADERS, e.g. 【功能主治】, 【有 效 期】, 【儿童用药注意】) or is a bare number
(【22】, 【40】, 【43】: scraping artefacts of the upstream site, kept as "other" sections under their own
name).
Any other 【...】 is text, not a header: brand marks such as
【强寿】 or 【吉林龙鑫药业有限公司】 inside a product name stay in that section's text.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from kb_loaders.files import LabelCollector, collapse_ws, dedup, iter_files
from kb_loaders.model import Label, LoadResult, Section
from kb_loaders.names import APPROVAL_NUMBER, approval_number
from kb_loaders.sections import ZH_HEADERS, zh_section

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".ndjson")
_BRACKET = re.compile(r"【([^【】\n]{1,30})】")
_PARENS = re.compile(r"[（(][^）)]*[）)]")
_LOOSE_HEADER = re.compile("(" + "|".join(sorted(map(re.escape, ZH_HEADERS), key=len, reverse=True)) + ")】")
_BRAND_PREFIX = re.compile(r"^[\u3400-\u9fff]{1,4}[-—]{1,2}(?=[\u3400-\u9fff]{2})")  # 威门-当归调经颗粒
_GLUED_SPEC = re.compile(r"(?<=[\u3400-\u9fff])\s*\d[\d.]*\s*(g|mg|ml|kg|克|毫升|粒|片|袋|支|丸|贴|瓶)[^\s]*")
_SPEC_TOKEN = re.compile(r"^([\d.]+[a-zA-Z克毫升粒片袋支丸贴瓶盒]*|.*[*/×].*)$")  # 9g*10粒, 60片, 100ml
_CJK = re.compile(r"[\u3400-\u9fff]")
_COMPANY_SUFFIX = re.compile(r"\s*[-—]{1,2}\s*[^-—]*(公司|集团|药业|制药|药厂)[^-—]*$")
_GENERIC_HEADERS = ("药品名称", "通用名称")
_BRAND_HEADERS = ("药品商品名称", "商品名称")
_COMPANY_HEADERS = ("制药公司", "生产企业", "生产厂家")


class RecordError(ValueError):
    pass


def load_cn_inserts(path: Path, limit: int | None = None) -> LoadResult:
    """Load one JSONL file of Chinese inserts or every *.jsonl file under a directory (sorted by name)."""
    path = Path(path)
    col = LabelCollector(limit)
    files = iter_files(path, SUFFIXES)
    if not files:
        col.skip(str(path), "*", "no .jsonl files found")
    for f in files:
        if col.full:
            break
        try:
            text = f.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as e:
            col.skip(f.name, "*", f"unreadable file: {e}")
            continue
        for n, line in enumerate(text.split("\n"), start=1):
            if col.full:
                break
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                col.skip(f.name, f"line {n}", f"invalid JSON line (truncated?): {e}")
                continue
            try:
                col.add(record_to_label(rec, f.name))
            except RecordError as e:
                rid = rec.get("id") if isinstance(rec, dict) else None
                col.skip(f.name, f"line {n} ({rid})" if rid not in (None, "") else f"line {n}", str(e))
    res = col.result()
    log.info("Chinese inserts %s: %d labels, %d skipped", path, len(res.labels), len(res.skipped))
    return res


def is_header(name: str) -> bool:
    h = re.sub(r"\s+", "", name)
    if not h:
        return False
    if h.isdigit() or h in ZH_HEADERS:
        return True
    return any(h.startswith(k) for k in ZH_HEADERS)


def split_sections(text: str) -> list[tuple[str, str]]:
    """[(header as written, text after it up to the next header)], plus ("", preamble) if text precedes the first
    header. Text is not stripped here."""
    proper = list(_BRACKET.finditer(text))
    heads = [(m.start(), m.end(), m.group(1)) for m in proper if is_header(m.group(1))]
    # a known header that lost its opening bracket ("…八珍益母丸药品名称】 八珍益母丸"), outside any 【…】 pair
    inside = [(m.start(), m.end()) for m in proper]
    for m in _LOOSE_HEADER.finditer(text):
        if not any(a <= m.start() < b for a, b in inside):
            heads.append((m.start(), m.end(), m.group(1)))
    heads.sort()
    out: list[tuple[str, str]] = []
    if heads and text[: heads[0][0]].strip():
        out.append(("", text[: heads[0][0]]))
    for i, (_, end_of_head, name) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        out.append((name, text[end_of_head:end]))
    return out


def clean_name(value: str) -> str:
    """A product name as written in an insert → the name alone, e.g. '【强寿】 解毒通淋丸 （60丸装）-广西强寿药业集团' →
    '解毒通淋丸', '同仁堂 妇科得生丸 9g*10粒' → '妇科得生丸', '乳块消口服液(三堂)' → '乳块消口服液',
    '威门-当归调经颗粒' → '当归调经颗粒', '缩泉丸 --【吉林龙鑫药业有限公司】' → '缩泉丸'."""
    s = _BRACKET.sub(" ", value)
    s = _COMPANY_SUFFIX.sub("", s)
    s = _PARENS.sub(" ", s)
    s = _GLUED_SPEC.sub("", s)
    tokens = [t.strip(" -—，,;；。.") for t in s.split() if not _SPEC_TOKEN.match(t)]
    tokens = [t for t in tokens if t]
    if not tokens:
        return ""
    # "同仁堂 妇科得生丸": a trademark or company word in front; the product name comes last
    name = tokens[-1] if all(_CJK.search(t) for t in tokens) else " ".join(tokens)
    name = _BRAND_PREFIX.sub("", name)
    name = re.split(r"[，,。；;：:]", name, maxsplit=1)[0]  # "八珍益母片补气血，调月经": text ran into the name
    half = len(name) // 2
    if len(name) % 2 == 0 and half >= 2 and name[:half] == name[half:]:
        name = name[:half]  # "乳核内消丸乳核内消丸"
    return name


def _clean_tail(text: str) -> str:
    # some records end mid-character (a truncated multi-byte sequence decoded as U+FFFD) or with a dangling 【
    return re.sub(r"[\ufffd\u3010]+\s*$", "", text)


def record_to_label(rec: Any, source_file: str) -> Label:
    if not isinstance(rec, dict):
        raise RecordError(f"record is a {type(rec).__name__}, not a JSON object")
    rid = rec.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid.strip():
        raise RecordError("record has no id")
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RecordError("record has no text")
    parts = split_sections(_clean_tail(text))
    if not any(h for h, _ in parts):
        raise RecordError("no 【header】 sections in text")

    sections: list[Section] = []
    values: dict[str, list[str]] = {}
    for header, body in parts:
        body_text = collapse_ws(body)
        if not body_text:
            continue
        name = header.strip() or "正文"
        key = zh_section(header) if header else "other"
        sections.append(Section(key=key, name=name, text=body_text))
        values.setdefault(re.sub(r"\s+", "", header), []).append(body_text)
    if not sections:
        raise RecordError("all sections are empty")

    def names_of(headers: tuple[str, ...]) -> list[str]:
        return dedup(clean_name(v) for h in headers for v in values.get(h, []))

    generic = names_of(_GENERIC_HEADERS)
    brand = names_of(_BRAND_HEADERS)
    company = dedup(v for h in _COMPANY_HEADERS for v in values.get(h, []))
    approval = values.get("批准文号", [])
    if generic or brand:
        title = (generic or brand)[0]
    elif approval:
        title = approval[0][:40]  # e.g. 国药准字Z20044101: identifies the product when the insert names none
    else:
        title = collapse_ws(_BRACKET.sub(" ", text))[:20]
    return Label(
        id=f"cn-{rid.strip()}",
        title=title,
        language="zh",
        source="cn_insert",
        source_file=source_file,
        sections=sections,
        generic_names=generic,
        brand_names=brand,
        manufacturer=company[0] if company else None,
        # the approval number names the product exactly: "国药准字Z14020904的用法用量" reaches this insert
        aliases=dedup(approval_number(m.group()) for v in approval for m in APPROVAL_NUMBER.finditer(v)),
    )
