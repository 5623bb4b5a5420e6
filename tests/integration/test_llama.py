"""The retriever through llama-index's interface, composed with a real llama-index query engine."""

from __future__ import annotations

from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText

from rag.apps.llama_adapter import DrugLlamaRetriever


def test_llama_retriever_nodes_carry_exact_provenance(service):
    r = DrugLlamaRetriever(service.retriever)
    nodes = r.retrieve("Who should not take naproxen?")
    assert nodes and nodes[0].node.metadata["doc_id"] == "000155a8-709c-44e5-a75f-cd890f3a7caf"
    assert nodes[0].node.metadata["section"] == "contraindications"
    n = nodes[0].node
    section = service.retriever.section_texts(n.metadata["doc_id"], "contraindications")
    assert any(t[n.start_char_idx: n.end_char_idx] == n.get_content() for t in section.values())


def test_llama_query_engine_composes(service):
    # "no_text" synthesis never calls an LLM; llama-index only wants one to construct the synthesizer
    engine = RetrieverQueryEngine(
        retriever=DrugLlamaRetriever(service.retriever), response_synthesizer=NoText(llm=MockLLM())
    )
    resp = engine.query("Can I take warfarin together with aspirin?")
    kinds = [sn.node.metadata["kind"] for sn in resp.source_nodes]
    assert kinds and kinds[0] == "graph" and "Major" in resp.source_nodes[0].node.get_content()
