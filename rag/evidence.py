"""What retrieval hands to an answer builder: numbered sources (label passages and graph edges) for one question."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rag.answer.schema import LinkedEntity


@dataclass(slots=True)
class Source:
    sid: str  # "S1", "S2", ... : what citations and generated answers refer to
    kind: Literal["label", "graph"]
    doc_id: str  # label id, or graph edge id
    title: str
    section: str | None  # canonical section key, or edge type
    section_name: str | None
    version: str | None
    text: str  # the passage (a chunk of the section, or the edge rendering)
    offset: int  # where `text` starts in `section_text`
    section_text: str  # the whole stored section (label) or the edge rendering (graph): quotes must be spans of it
    score: float = 0.0
    language: str = "en"
    drug_ids: list[str] = field(default_factory=list)
    edge: dict[str, Any] | None = None  # graph edge (type, src/dst ids and names, props) for graph sources


@dataclass(slots=True)
class Evidence:
    question: str
    language: Literal["en", "zh"]
    intent: str  # question type: indications | dosage | ... | interaction | disease_drugs | general
    sections: list[str]  # routed canonical sections ([] = any)
    linked: list[LinkedEntity] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    retrieved_labels: list[str] = field(default_factory=list)
    interaction_pairs: list[tuple[str, str]] = field(default_factory=list)  # drug id pairs asked about
    history_text: str = ""  # the user's earlier turns, for context checks (age, pregnancy, organ function)

    def source(self, sid: str) -> Source | None:
        return next((s for s in self.sources if s.sid == sid), None)
