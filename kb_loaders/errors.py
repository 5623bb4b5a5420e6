"""The project's one exception root and its few subclasses.

It lives in the lowest layer (kb_loaders ← graph ← rag ← ui) so that every package can raise these without importing
a package above it; rag.core.errors re-exports them, and the API maps each subclass to an HTTP status at the edge
(rag/apps/api.py).
"""

from __future__ import annotations


class DrugRagError(Exception):
    """Root of every error this project raises on purpose."""

    http_status = 500


class InvalidInput(DrugRagError):
    """Empty, over-long or malformed input (HTTP 422)."""

    http_status = 422


class NotFound(DrugRagError):
    """An unknown drug, label or graph entity (HTTP 404)."""

    http_status = 404


class StoreUnavailable(DrugRagError):
    """A vector or graph store cannot be reached or opened (HTTP 503)."""

    http_status = 503


class ModelUnavailable(DrugRagError):
    """An embedding or generation model cannot be loaded or reached (HTTP 503)."""

    http_status = 503


class SourceError(DrugRagError):
    """A source file cannot be read at all (a single bad record is skipped and reported instead)."""

    http_status = 500
