"""The GraphStore protocol: what ingestion, retrieval, the API and the UI need from a graph backend.

Node types: Drug, Disease, Symptom, Check, Food, Department, Cure, Producer, Label. Every node has `id` (unique per
type), `name`. Drug ids are `kb_loaders.names.base_name(...)` of a drug name, so a label's generic name, a DDInter
drug and a Chinese KG drug with the same base name meet at one node. Edge types (direction as stored):
  Drug-INTERACTS_WITH->Drug {level, sources, conflict, source}   (undirected in meaning; stored once, src < dst)
  Disease-RECOMMAND_DRUG->Drug, Disease-COMMON_DRUG->Drug, Disease-HAS_SYMPTOM->Symptom,
  Disease-NEED_CHECK->Check, Disease-RECOMMAND_EAT->Food, Disease-NO_EAT->Food, Disease-DO_EAT->Food,
  Disease-CURE_WAY->Cure, Disease-ACOMPANY_WITH->Disease, Disease-CURE_DEPARTMENT->Department   {source}
  Drug-HAS_LABEL->Label {source}
Every edge has a stable `id` (kb_loaders.model.Edge.id) used in citations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypedDict, runtime_checkable

from kb_loaders.model import EDGE_TYPES, NODE_TYPES, Edge, Node  # noqa: F401 (re-exported)

# the graph schema is part of the shared data model (kb_loaders.model); re-exported here for backends


class GNode(TypedDict):
    id: str
    type: str
    name: str
    props: dict[str, Any]


class GEdge(TypedDict):
    id: str  # stable edge id, see kb_loaders.model.Edge.id
    type: str
    src: str
    src_type: str
    src_name: str
    dst: str
    dst_type: str
    dst_name: str
    props: dict[str, Any]  # e.g. level, sources, conflict, source


@runtime_checkable
class GraphStore(Protocol):
    # --- lifecycle -------------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create node/rel tables (kuzu) or constraints/indexes (Neo4j); idempotent."""

    def close(self) -> None: ...

    # --- writing (all idempotent: writing the same records twice leaves the same graph) -------------------------
    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        """Insert nodes that are not there yet, update name/props of those that are; returns how many were new."""

    def upsert_edges(self, edges: Sequence[Edge]) -> int:
        """Insert edges that are not there yet (by Edge.id), update props of those that are; returns new count.
        Endpoints must exist (upsert their nodes first)."""

    def delete_source(self, source: str) -> int:
        """Delete every edge whose `source` prop is `source` (e.g. 'ddinter'); returns how many."""

    def get_source_fingerprint(self, source: str) -> str | None:
        """The fingerprint recorded by set_source_fingerprint after a source finished loading, else None."""

    def set_source_fingerprint(self, source: str, fingerprint: str) -> None: ...

    def upsert_label(self, label_id: str, props: dict[str, Any], drugs: Sequence[Node]) -> None:
        """Create/update the Label node (props include title, version, language, source, content_hash), create the
        given Drug nodes if missing, and make HAS_LABEL edges exactly these drugs → label (stale ones removed)."""

    def upsert_labels(self, items: Sequence[tuple[str, dict[str, Any], Sequence[Node]]]) -> None:
        """upsert_label for many (label_id, props, drugs) at once, with bulk writes (ingest uses this)."""

    def delete_label(self, label_id: str) -> bool:
        """Remove a Label node and its HAS_LABEL edges; False when it was not there."""

    def label_hashes(self) -> dict[str, str]:
        """label id → content_hash of every Label node."""

    # --- reading ----------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        """{"nodes": {type: n}, "edges": {type: n}}."""

    def names(self, node_type: str) -> list[tuple[str, str]]:
        """(id, name) of every node of a type, plus Drug aliases as extra (id, alias) pairs; for the entity linker."""

    def find_entities(self, q: str, limit: int = 20, types: Iterable[str] | None = None) -> list[GNode]:
        """Nodes whose name or id contains q (case-insensitive), exact matches first, then shorter names."""

    def get_node(self, node_type: str, node_id: str) -> GNode | None: ...

    def get_edge(self, edge_id: str) -> GEdge | None:
        """The edge with this id (`TYPE:src|dst`), or None; lets a checker re-read a cited edge from the graph."""

    def interactions_between(self, drug_ids: Sequence[str]) -> list[GEdge]:
        """INTERACTS_WITH edges among the given Drug ids (either direction)."""

    def interactions_of(self, drug_id: str, limit: int = 50) -> list[GEdge]:
        """INTERACTS_WITH edges of one drug, most severe first (Major, Moderate, Minor, Unknown)."""

    def edges_of(self, node_type: str, node_id: str, edge_types: Iterable[str] | None = None,
                 limit: int = 100) -> list[GEdge]:
        """Edges touching a node (either direction), optionally of some types; bounded by limit."""

    def neighbourhood(self, node_type: str, node_id: str, depth: int = 1, edge_types: Iterable[str] | None = None,
                      limit: int = 200) -> tuple[list[GNode], list[GEdge], bool]:
        """Nodes and edges within `depth` hops (1..3), at most `limit` edges; the bool says it was truncated."""

    def labels_of_drug(self, drug_id: str) -> list[str]:
        """Label ids linked by HAS_LABEL."""

    def drug_label_index(self) -> dict[str, list[str]]:
        """Every Drug id that has at least one HAS_LABEL edge → its label ids (one query; for the entity linker)."""
