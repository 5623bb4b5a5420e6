"""llama-index adapter: the drug retriever behind llama-index's BaseRetriever interface.

Each node is one numbered source of the Evidence (a label passage or a graph edge) with its provenance in metadata
(label id, section, version, character offsets in the stored section), so it composes with llama-index query
engines (e.g. RetrieverQueryEngine) and their citations keep pointing at exact label text.

llama-index is used at this seam only: its own vector-store and graph-store integrations would bypass our entity
linking, section routing and graph-first interactions, and `llama-index-graph-stores-neo4j` needs APOC and pins
neo4j<6 (see ../shared/PLATFORM.md).
"""

from __future__ import annotations

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.retrieval.retriever import Retriever


class DrugLlamaRetriever(BaseRetriever):
    def __init__(self, retriever: Retriever, **kwargs) -> None:
        self._drug_retriever = retriever
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        ev = self._drug_retriever.retrieve(query_bundle.query_str).evidence
        out = []
        for s in ev.sources:
            node = TextNode(
                id_=f"{s.doc_id}#{s.section}@{s.offset}" if s.kind == "label" else s.doc_id,
                text=s.text,
                start_char_idx=s.offset,
                end_char_idx=s.offset + len(s.text),
                metadata={"source_id": s.sid, "kind": s.kind, "doc_id": s.doc_id, "title": s.title,
                          "section": s.section, "section_name": s.section_name, "version": s.version,
                          "language": s.language, "intent": ev.intent},
                excluded_embed_metadata_keys=["source_id", "doc_id", "version", "intent"],
            )
            out.append(NodeWithScore(node=node, score=float(s.score)))
        return out
