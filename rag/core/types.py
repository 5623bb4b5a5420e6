"""Types shared across rag: conversation turns, linked entities, the chunk payload stored with every vector, and the
evidence (numbered label passages and graph edges) that retrieval hands to an answer builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

from pydantic import BaseModel, Field

from graph.store import GEdge


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=4000)


class LinkedEntity(BaseModel):
    id: str
    type: str
    name: str
    matched: str = Field(description="the text of the question that matched")
    in_labels: bool = Field(default=False, description="the knowledge base holds at least one label for it")
    corrected: bool = Field(default=False, description="`matched` is a misspelling, linked to the closest name "
                            "(the answer says so)")


class ChunkPayload(TypedDict):
    """What rag.ingest stores with every chunk vector (rag.stores.base documents the invariants).

    Chunks of a section tile it exactly: ''.join(texts by chunk_index) == section text, and
    section_text[start:end] == text, so a quote can be checked against the stored section.
    """

    chunk_id: str
    label_id: str
    label_hash: str
    version: str | None
    effective_date: str | None
    title: str
    language: str
    source: str
    source_file: str
    names: list[str]  # norm names of the label's drugs
    drug_ids: list[str]  # base names = graph Drug ids
    generic_ids: list[str]  # base names of the generic (or substance) names only
    section: str  # canonical key
    section_name: str  # the original section name
    section_idx: int  # position of the section in the label
    chunk_index: int
    n_chunks: int
    start: int
    end: int
    text: str


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
    edge: GEdge | None = None
    population: str | None = None  # a passage fetched for the patient context (rag.retrieval.context key)

    @property
    def edge_level(self) -> str | None:
        """The DDInter level of an interaction edge source (None for anything else)."""
        if self.edge is None or self.edge["type"] != "INTERACTS_WITH":
            return None
        return str((self.edge.get("props") or {}).get("level") or "Unknown")


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
