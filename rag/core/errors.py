"""The exception root and its subclasses (defined in kb_loaders.errors, the lowest layer; re-exported here)."""

from kb_loaders.errors import (
    DrugRagError,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    SourceError,
    StoreUnavailable,
)

__all__ = ["DrugRagError", "InvalidInput", "ModelUnavailable", "NotFound", "SourceError", "StoreUnavailable"]
