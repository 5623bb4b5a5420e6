"""The versioned answer schema returned by the service, the CLI (--json) and the API.

Every fact and interaction cites ids of `citations`; every label citation's `quote` is the verbatim text of the
stored section at [start, end) (checked by rag.answer.verify before an answer leaves the service). There is no
field for a prescription, on purpose.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.core.types import LinkedEntity, Turn

__all__ = ["Answer", "AnswerMetadata", "Citation", "Fact", "Gloss", "Interaction", "InteractionCheck", "LinkedEntity",
           "Turn", "answer_json_schema"]

SCHEMA_VERSION: Literal["1.2"] = "1.2"  # 1.2: glossary

Status = Literal["answered", "insufficient_evidence", "needs_clarification", "refused"]
Severity = Literal["major", "moderate", "minor", "unknown"]


class Citation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="citation id referenced by facts, e.g. 'S1'", max_length=16)
    source: Literal["label", "graph"]
    doc_id: str = Field(description="label id (set_id or stable hash) or graph edge id")
    title: str = Field(description="label title, or the graph source")
    section: str | None = Field(default=None, description="canonical section key, or the edge type")
    section_name: str | None = Field(default=None, description="the section's original name in the source")
    version: str | None = None
    quote: str = Field(description="verbatim text of the section (or the edge rendering) at [start, end)")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    quote_replaced: bool = Field(
        default=False, description="a generated quote was replaced by the best supporting span"
    )


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="canonical section key (indications, dosage, ...) or a graph relation")
    text: str
    citations: list[str] = Field(min_length=1)


class Gloss(BaseModel):
    """A Chinese term for English words of a cited label quote (Chinese answers quoting English labels)."""

    model_config = ConfigDict(extra="forbid")

    en: str = Field(description="the English words, as written in the cited quote")
    zh: str = Field(description="the Chinese term (rag/data/en_zh_medical_terms.tsv)")
    citation: str = Field(description="id of the citation whose quote holds `en`")


class Interaction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drugs: list[str] = Field(min_length=2)
    severity: Severity
    text: str
    citations: list[str] = Field(min_length=1)


class InteractionCheck(BaseModel):
    """One pair of the drugs a question names, checked against the graph: recorded (with the edge's severity and
    citations) or not recorded. Not recorded means the knowledge base has no record — never that the pair is safe."""

    model_config = ConfigDict(extra="forbid")

    drugs: list[str] = Field(min_length=2, max_length=2, description="the two drugs as the question named them")
    drug_ids: list[str] = Field(min_length=2, max_length=2, description="their knowledge-graph ids")
    recorded: bool
    severity: Severity | None = Field(default=None, description="the graph edge's level; null when not recorded")
    text: str
    citations: list[str] = Field(default_factory=list, description="the graph edge (and label sentences) it rests on")


class AnswerMetadata(BaseModel):
    generator: str = "extractive"
    model: str | None = None
    prompt_format: str | None = None
    latency_ms: float | None = None
    linked: list[LinkedEntity] = Field(default_factory=list)
    routed_sections: list[str] = Field(default_factory=list)
    retrieved_labels: list[str] = Field(default_factory=list, description="distinct label ids in retrieval order")
    dropped_facts: int = Field(default=0, description="generated facts dropped because no source supported them")
    replaced_quotes: int = 0
    fallback: str | None = Field(default=None, description="why a generated answer fell back to extractive")
    extra: dict[str, Any] = Field(default_factory=dict)


class Answer(BaseModel):
    schema_version: Literal["1.2"] = SCHEMA_VERSION
    question: str
    language: Literal["en", "zh"]
    status: Status
    answer: str = Field(description="short answer in the question's language")
    facts: list[Fact] = Field(default_factory=list)
    interactions: list[Interaction] = Field(default_factory=list)
    interaction_checks: list[InteractionCheck] = Field(
        default_factory=list, description="every pair of the drugs asked about: recorded or not recorded")
    citations: list[Citation] = Field(default_factory=list)
    glossary: list[Gloss] = Field(
        default_factory=list, description="Chinese terms beside the English words of the quotes they came from")
    follow_up_questions: list[str] = Field(default_factory=list)
    disclaimer: str
    metadata: AnswerMetadata = Field(default_factory=AnswerMetadata)


def answer_json_schema() -> dict[str, Any]:
    return Answer.model_json_schema()
