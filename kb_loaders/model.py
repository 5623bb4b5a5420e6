"""The typed model every loader normalises into.

A Label is one drug label (an openFDA record, an SPL document, a Chinese package insert) with its sections keyed by
one canonical section vocabulary (sections.py). GraphRecords are nodes and edges for the knowledge graph. A
SkippedRecord is a malformed record that was reported and skipped: loaders never abort a run for one record and
never drop one silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

NODE_TYPES: tuple[str, ...] = ("Drug", "Disease", "Symptom", "Check", "Food", "Department", "Cure", "Producer", "Label")
# edge type → (source node type, target node type)
EDGE_TYPES: dict[str, tuple[str, str]] = {
    "INTERACTS_WITH": ("Drug", "Drug"),
    "RECOMMAND_DRUG": ("Disease", "Drug"),
    "COMMON_DRUG": ("Disease", "Drug"),
    "HAS_SYMPTOM": ("Disease", "Symptom"),
    "NEED_CHECK": ("Disease", "Check"),
    "RECOMMAND_EAT": ("Disease", "Food"),
    "NO_EAT": ("Disease", "Food"),
    "DO_EAT": ("Disease", "Food"),
    "CURE_WAY": ("Disease", "Cure"),
    "ACOMPANY_WITH": ("Disease", "Disease"),
    "CURE_DEPARTMENT": ("Disease", "Department"),
    "HAS_LABEL": ("Drug", "Label"),
}


@dataclass(slots=True)
class Section:
    key: str  # canonical section key, one of sections.CANONICAL_SECTIONS
    name: str  # the original section name (openFDA field, LOINC code + title, Chinese header)
    text: str  # plain text, no markup


@dataclass(slots=True)
class Label:
    id: str  # set_id, or a stable hash when the source has none
    title: str
    language: str  # "en" | "zh"
    source: str  # "openfda" | "spl" | "cn_insert"
    source_file: str
    sections: list[Section]
    version: str | None = None
    effective_date: str | None = None
    generic_names: list[str] = field(default_factory=list)
    brand_names: list[str] = field(default_factory=list)
    substance_names: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    rxcui: list[str] = field(default_factory=list)
    unii: list[str] = field(default_factory=list)
    manufacturer: str | None = None
    product_type: str | None = None

    def all_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for n in [*self.generic_names, *self.brand_names, *self.substance_names, *self.aliases]:
            if n and n.strip():
                seen.setdefault(n.strip(), None)
        return list(seen)

    def content_hash(self) -> str:
        """Hash of everything stored for this label: a changed hash means re-index it."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


@dataclass(slots=True)
class SkippedRecord:
    file: str
    record: str  # record index or id within the file
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "record": self.record, "reason": self.reason}


@dataclass(slots=True)
class Node:
    type: str  # Drug, Disease, Symptom, Check, Food, Department, Cure, Producer, Label
    id: str
    name: str
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Edge:
    type: str  # INTERACTS_WITH, RECOMMAND_DRUG, COMMON_DRUG, HAS_SYMPTOM, ..., HAS_LABEL
    src_type: str
    src: str
    dst_type: str
    dst: str
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable edge id used in citations: TYPE:src|dst (undirected types sort the ends)."""
        a, b = self.src, self.dst
        if self.type == "INTERACTS_WITH" and b < a:
            a, b = b, a
        return f"{self.type}:{a}|{b}"


@dataclass(slots=True)
class GraphRecords:
    source: str  # "ddinter" | "cmedkg" | ...
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    fingerprint: str = ""  # hash of the source files; unchanged fingerprint → nothing to do


@dataclass(slots=True)
class LoadResult:
    labels: list[Label] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
