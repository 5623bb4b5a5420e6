"""Readiness shared by /healthz and the /v1 routes: the last DrugService.health() probe, reused for a few seconds.

A knowledge base that fails its probe (a damaged vector segment, a store that went away, no embedding model) makes
every KB-backed route answer 503 until a probe passes again — a partly readable store must not turn into confident
"no information" answers. Errors in the probe body are shortened for clients (no server paths).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rag.apps.api_models import Health
from rag.apps.http_errors import public_detail
from rag.core.errors import StoreUnavailable
from rag.service import DrugService


class Readiness:
    def __init__(self, svc: Callable[[], DrugService], ttl_s: float) -> None:
        self._svc = svc
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._at = -1e9
        self._body: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        with self._lock:
            if time.monotonic() - self._at > self.ttl_s:
                h = self._svc().health()
                for v in h.values():
                    if isinstance(v, dict) and v.get("error"):
                        v["error"] = public_detail(str(v["error"]))
                self._body = Health.model_validate(h).model_dump()
                self._at = time.monotonic()
            return self._body

    def invalidate(self) -> None:
        with self._lock:
            self._at = -1e9

    def require(self) -> None:
        """A FastAPI dependency: 503 unless the knowledge base passed its last probe."""
        body = self.body()
        if not body["ok"]:
            failing = [f"{k}: {v.get('error') or 'not ok'}" for k, v in body.items()
                       if isinstance(v, dict) and not v.get("ok")]
            raise StoreUnavailable("the knowledge base failed its readiness probe (" + "; ".join(failing) + ")")
