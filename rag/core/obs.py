"""Request ids and log formatting, so an operator can follow one request through ask, retrieval and generation.

The API edge (rag/apps/guard.py) sets `request_id` for each request; it follows the request into worker threads
(contextvars are copied there by anyio/Starlette) and every log record gets it as `record.request_id` through
`RequestIdFilter`. `setup_logging(fmt)` installs text lines or JSON lines (`DRUGRAG_LOG_FORMAT=json`) on the root
logger. Structured fields ride in `extra={"fields": {...}}`: JSON lines merge them, text lines append `k=v`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("drugrag_request_id", default=None)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def valid_request_id(value: str | None) -> str | None:
    """A client-sent X-Request-ID worth keeping (short, no spaces or control characters), else None."""
    return value if value and _VALID_ID.match(value) else None


def current_request_id() -> str | None:
    return request_id.get()


def outgoing_headers() -> dict[str, str]:
    """Headers that carry the current request id to a downstream server (e.g. vLLM's X-Request-Id)."""
    rid = request_id.get()
    return {"X-Request-Id": rid} if rid else {}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, request_id, msg, the record's `fields`, and exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: int = logging.WARNING, fmt: str = "text", stream: Any = None) -> None:
    """Root logging: one stderr handler with the request-id filter and the chosen format (replaces handlers)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # the access log is ours (rag/apps/guard.py); uvicorn's own would repeat every request without its id
    logging.getLogger("uvicorn.access").disabled = True
