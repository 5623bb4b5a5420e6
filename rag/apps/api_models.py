"""Typed bodies of the JSON API: one model per route's response, and the one error body every failure uses.

Browse pages (drug, label, entities, neighbourhood, KB) allow extra keys, so a field the service gains reaches
clients (and the schema says so) instead of being dropped silently.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="error class: InvalidInput, NotFound, Unauthorized, RateLimited, Overloaded, "
                      "PayloadTooLarge, UriTooLong, InvalidHost, StoreUnavailable, ModelUnavailable, InternalError")
    message: str = Field(description="what went wrong and what to do, in words (no server paths)")


class ErrorBody(BaseModel):
    """Every 4xx/5xx body of this API (routes, auth, limits, validation, the OpenAI facade). `error` has the shape
    OpenAI clients read (`error.message`), so their users see the reason; `detail` repeats the message for clients
    of the first API version."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorInfo
    detail: str = Field(description="the same as error.message")
    request_id: str | None = Field(default=None, description="the X-Request-ID of this request (also in the logs)")

    @classmethod
    def of(cls, error: str, message: str, request_id: str | None) -> ErrorBody:
        return cls(error=ErrorInfo(type=error, message=message), detail=message, request_id=request_id)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class GraphNode(_Open):
    id: str
    type: str
    name: str
    props: dict[str, Any] = Field(default_factory=dict)


class GraphEdge(_Open):
    id: str = Field(description="stable edge id, cited by answers")
    type: str
    src: str
    src_type: str
    src_name: str | None = None
    dst: str
    dst_type: str
    dst_name: str | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class Entity(GraphNode):
    has_label: bool = Field(description="a Drug with at least one label in the knowledge base")


class LabelSection(_Open):
    index: int
    key: str = Field(description="canonical section key (indications, dosage, ...)")
    name: str | None = Field(default=None, description="the section's original name")
    text: str


class LabelPage(_Open):
    label_id: str
    title: str | None = None
    version: str | None = None
    effective_date: str | None = None
    language: str | None = None
    source: str | None = None
    source_file: str | None = None
    names: list[str] = Field(default_factory=list)
    sections: list[LabelSection]


class DrugPage(_Open):
    drug: GraphNode
    labels: list[LabelPage]
    interactions: list[GraphEdge] = Field(description="recorded interactions, most severe first (no record is "
                                          "not a statement of safety)")
    graph: list[GraphEdge] = Field(description="diseases that recommend or commonly use the drug")


class NodeRef(_Open):
    id: str
    type: str


class Neighbourhood(_Open):
    center: NodeRef
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool
    limit: int


class GraphCounts(_Open):
    nodes: dict[str, int]
    edges: dict[str, int]


class KBStats(_Open):
    graph: GraphCounts
    chunks: int
    labels: int
    ingest_report: dict[str, Any] | None = Field(default=None, description="the last ingest's report")


class ComponentHealth(_Open):
    ok: bool
    error: str | None = None


class Health(_Open):
    ok: bool = Field(description="every component answered a real query")
    generator: str
    embedder: ComponentHealth | None = None
    vector_store: ComponentHealth | None = None
    graph_store: ComponentHealth | None = None


class JsonSchemaDoc(_Open):
    """A JSON Schema document (draft 2020-12, as pydantic writes it)."""

    title: str
    type: str
    properties: dict[str, Any]
