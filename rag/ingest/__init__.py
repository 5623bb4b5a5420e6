"""Ingestion: sources → chunks → embeddings → vector store + graph store (rag.ingest.pipeline)."""

from rag.ingest.pipeline import IngestReport, delete_label, load_sources, run_ingest

__all__ = ["IngestReport", "delete_label", "load_sources", "run_ingest"]
