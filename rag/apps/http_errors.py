"""The API's one error body, how each error status is documented in OpenAPI, and messages made fit for clients."""

from __future__ import annotations

import re
from typing import Any

from fastapi.responses import JSONResponse

from rag.apps.api_models import ErrorBody
from rag.core.obs import current_request_id

_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"():,;]+/)+([^\s/'\"():,;]*)")
HTTP_ERRORS = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 406: "NotAcceptable",
                413: "PayloadTooLarge", 415: "UnsupportedMediaType"}

ERROR_DOCS = {
    400: "Host header not trusted, or a malformed request",
    401: "missing or unknown API key (when DRUGRAG_API_KEYS is set)",
    404: "unknown drug, label, entity or model",
    413: "request body over DRUGRAG_MAX_BODY_BYTES",
    414: "URL too long",
    422: "invalid input (the detail says which field and why)",
    429: "per-key rate limit reached (Retry-After says when to retry)",
    500: "internal error (the request id finds it in the server log)",
    503: "a store or model is unavailable, or the server is overloaded (Retry-After)",
}


def error_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    codes = sorted({400, 401, 414, 422, 429, 500, 503, *extra})
    return {c: {"model": ErrorBody, "description": ERROR_DOCS[c]} for c in codes}


def public_detail(message: str) -> str:
    """An error message fit for clients: absolute server paths shortened to their last part."""
    return _ABS_PATH.sub(lambda m: "…/" + (m.group(1) or ""), message)


def error_body(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody.of(error, detail, current_request_id())
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)
