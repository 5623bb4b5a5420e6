"""Browsing the knowledge base (the API's drug, label, search and graph routes, the UI's pages): read-only views
over the stores, shared by DrugService as a mixin."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag.core.errors import InvalidInput, NotFound
from rag.core.text import clean_text
from rag.stores.base import SearchFilter

if TYPE_CHECKING:
    from rag.components import Components


class Browsing:
    c: Components  # set by DrugService

    def search(self, q: str, limit: int = 20, types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = clean_text(q, 200, "query")
        idx = self.c.retriever.linker.drug_labels
        return [
            {**n, "has_label": bool(idx.get(n["id"])) if n["type"] == "Drug" else False}
            for n in self.c.gstore.find_entities(q, limit=limit, types=types)
        ]

    def drug(self, drug_id: str) -> dict[str, Any]:
        g = self.c.gstore
        node = g.get_node("Drug", drug_id)
        if node is None:
            links = self.c.retriever.linker.link_name(drug_id)
            node = g.get_node("Drug", links[0].id) if links else None
        if node is None:
            raise NotFound(f"unknown drug: {drug_id}")
        labels = []
        for lid in g.labels_of_drug(node["id"]):
            labels.append(self.label(lid))
        return {
            "drug": node,
            "labels": labels,
            "interactions": g.interactions_of(node["id"], limit=50),
            "graph": g.edges_of("Drug", node["id"], ["RECOMMAND_DRUG", "COMMON_DRUG"], limit=50),
        }

    def label(self, label_id: str) -> dict[str, Any]:
        chunks = list(self.c.vstore.scroll(SearchFilter(label_ids=[label_id])))
        if not chunks:
            raise NotFound(f"unknown label: {label_id}")
        secs: dict[int, list[dict[str, Any]]] = {}
        for c in chunks:
            secs.setdefault(int(c.get("section_idx", 0)), []).append(c)
        first = chunks[0]
        sections = []
        for si in sorted(secs):
            cs = sorted(secs[si], key=lambda c: c["chunk_index"])
            sections.append(
                {
                    "index": si,
                    "key": cs[0]["section"],
                    "name": cs[0].get("section_name"),
                    "text": "".join(c["text"] for c in cs),
                }
            )
        return {
            "label_id": label_id,
            "title": first.get("title"),
            "version": first.get("version"),
            "effective_date": first.get("effective_date"),
            "language": first.get("language"),
            "source": first.get("source"),
            "source_file": first.get("source_file"),
            "names": first.get("names", []),
            "sections": sections,
        }

    def neighbourhood(
        self,
        node_id: str,
        node_type: str | None = None,
        depth: int = 1,
        types: Sequence[str] | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        if not 1 <= depth <= 3:
            raise InvalidInput("depth must be 1, 2 or 3")
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be between 1 and 500")
        g = self.c.gstore
        if node_type is None:
            found = [n for n in g.find_entities(node_id, limit=20) if n["id"] == node_id]
            if not found:
                raise NotFound(f"unknown graph entity: {node_id}")
            node_type = found[0]["type"]
        elif g.get_node(node_type, node_id) is None:
            raise NotFound(f"unknown graph entity: {node_type} {node_id}")
        nodes, edges, truncated = g.neighbourhood(
            node_type, node_id, depth=depth, edge_types=types or None, limit=limit
        )
        return {
            "center": {"id": node_id, "type": node_type},
            "nodes": nodes,
            "edges": edges,
            "truncated": truncated,
            "limit": limit,
        }

    def kb_stats(self) -> dict[str, Any]:
        report_path = self.c.settings.home / "ingest_report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        return {
            "graph": self.c.gstore.counts(),
            "chunks": self.c.vstore.count(),
            "labels": len(self.c.vstore.label_hashes()),
            "ingest_report": report,
        }

    def health(self) -> dict[str, Any]:
        """Readiness: the embedder embeds, the vector store answers one exact query over every vector (a damaged
        segment fails here, not only in ask) and the graph answers a count. Errors are reported, never raised."""
        out: dict[str, Any] = {}
        vec: list[float] | None = None
        try:
            vec = [float(x) for x in self.c.embedder.embed_queries(["readiness probe"])[0]]
            out["embedder"] = {"ok": True}
        except Exception as e:  # noqa: BLE001 - health reports every failure
            out["embedder"] = {"ok": False, "error": str(e)}
        try:
            v = self.c.vstore
            if vec is not None:
                v.probe(vec)
            out["vector_store"] = {"ok": True, "chunks": v.count(), "probed": vec is not None}
        except Exception as e:  # noqa: BLE001
            out["vector_store"] = {"ok": False, "error": str(e)}
        try:
            c = self.c.gstore.counts()
            out["graph_store"] = {"ok": True, "nodes": sum(c["nodes"].values())}
        except Exception as e:  # noqa: BLE001
            out["graph_store"] = {"ok": False, "error": str(e)}
        out["ok"] = all(v["ok"] for v in out.values() if isinstance(v, dict))
        out["generator"] = self.c.settings.generator
        return out
