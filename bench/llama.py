"""The ratio baseline: the same chunks and the same model through a plain llama-index pipeline.

A new user's pipeline: `HuggingFaceEmbedding` (sentence-transformers on torch fp32, the same local model, the
same 96-token window and e5 prompts) and an in-memory `VectorStoreIndex`. Ingest throughput is measured on `n`
chunks (llama-index embeds every chunk, duplicates included) and projected to the whole sample; queries run on an
index of every chunk (vectors of the chunks not timed are inserted precomputed, so the index has the full size).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.core.settings import Settings


def hf_embedder(s: Settings) -> Any:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=s.embedding_model_path, max_length=s.embedding_max_seq_length,
                                query_instruction=s.embedding_query_prompt, text_instruction=s.embedding_passage_prompt,
                                embed_batch_size=s.embedding_batch_size, device="cpu")


def ingest_rate(s: Settings, texts: Sequence[str], embed: Any) -> dict[str, Any]:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode

    nodes = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(texts)]
    embed.get_text_embedding_batch([t for t in texts[:8]])  # warm-up
    t = time.perf_counter()
    VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(), embed_model=embed)
    dt = time.perf_counter() - t
    return {"chunks": len(texts), "seconds": round(dt, 2), "chunks_per_s": round(len(texts) / dt, 1)}


def query_latency(texts: Sequence[str], vectors: np.ndarray, questions: Sequence[str], embed: Any,
                  top_k: int = 8) -> dict[str, Any]:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode

    nodes = [TextNode(text=t, id_=f"n{i}", embedding=vectors[i].tolist()) for i, t in enumerate(texts)]
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(), embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=top_k)
    for q in questions[:5]:
        retriever.retrieve(q)
    lat = []
    for q in questions:
        t = time.perf_counter()
        retriever.retrieve(q)
        lat.append((time.perf_counter() - t) * 1000)
    return {"index_chunks": len(nodes), "questions": len(questions),
            "query_ms_p50": round(float(np.percentile(lat, 50)), 1),
            "query_ms_p95": round(float(np.percentile(lat, 95)), 1)}
