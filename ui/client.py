"""A thin client with DrugService's methods, in-process or over HTTP (settings.ui_backend).

Both raise rag.core.errors.DrugRagError subclasses for expected failures, so pages handle one family of errors whichever
backend is configured: the HTTP client maps the API's {"error", "detail"} bodies back to the same classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from rag.answer.schema import Answer, Turn
from rag.core import errors
from rag.core.settings import Settings, get_settings


class Client(Protocol):
    backend: str

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...

    def ask_stream(self, question: str, history: Sequence[Turn] = ()) -> Iterator[dict[str, Any]]: ...

    def interactions(self, drugs: Sequence[str]) -> Answer: ...

    def search(self, q: str, limit: int = 20, types: Sequence[str] | None = None) -> list[dict[str, Any]]: ...

    def drug(self, drug_id: str) -> dict[str, Any]: ...

    def label(self, label_id: str) -> dict[str, Any]: ...

    def neighbourhood(self, node_id: str, node_type: str | None = None, depth: int = 1,
                      types: Sequence[str] | None = None, limit: int = 100) -> dict[str, Any]: ...

    def kb_stats(self) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]: ...


class InProcessClient:
    """Calls one DrugService (shared by every browser session of this Streamlit process)."""

    backend = "inprocess"

    def __init__(self, service: Any) -> None:
        self.service = service

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        return self.service.ask(question, list(history))

    def ask_stream(self, question: str, history: Sequence[Turn] = ()) -> Iterator[dict[str, Any]]:
        return self.service.ask_stream(question, list(history))

    def interactions(self, drugs: Sequence[str]) -> Answer:
        return self.service.interactions(list(drugs))

    def search(self, q: str, limit: int = 20, types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self.service.search(q, limit=limit, types=list(types) if types else None)

    def drug(self, drug_id: str) -> dict[str, Any]:
        return self.service.drug(drug_id)

    def label(self, label_id: str) -> dict[str, Any]:
        return self.service.label(label_id)

    def neighbourhood(self, node_id: str, node_type: str | None = None, depth: int = 1,
                      types: Sequence[str] | None = None, limit: int = 100) -> dict[str, Any]:
        return self.service.neighbourhood(node_id, node_type, depth, list(types) if types else None, limit)

    def kb_stats(self) -> dict[str, Any]:
        return self.service.kb_stats()

    def health(self) -> dict[str, Any]:
        return self.service.health()


_ERRORS: dict[str, type[errors.DrugRagError]] = {
    c.__name__: c for c in (errors.InvalidInput, errors.NotFound, errors.StoreUnavailable, errors.ModelUnavailable,
                            errors.SourceError, errors.DrugRagError)
}
_BY_STATUS: dict[int, type[errors.DrugRagError]] = {
    404: errors.NotFound, 422: errors.InvalidInput, 400: errors.InvalidInput, 503: errors.StoreUnavailable,
    401: errors.InvalidInput, 413: errors.InvalidInput, 429: errors.StoreUnavailable,
}


def error_from_response(r: httpx.Response) -> errors.DrugRagError:
    """The DrugRagError an API error response stands for, with the API's readable detail as its message."""
    name, detail = None, None
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        name = body.get("error")
        detail = body.get("detail")
        if isinstance(name, dict):  # {"error": {"type", "message"}, "detail", "request_id"}
            info: dict[str, Any] = name
            name, detail = info.get("type"), info.get("message") or detail
        if isinstance(detail, list):  # FastAPI's default validation body
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    cls = _ERRORS.get(str(name)) or _BY_STATUS.get(r.status_code) or errors.DrugRagError
    if not detail:
        text = (r.text or "").strip()
        detail = text[:300] if text and not text.lstrip().startswith("<") else r.reason_phrase
    return cls(f"{detail} (HTTP {r.status_code})")


class HttpClient:
    """Calls the drugrag JSON API (`drugrag serve`) at settings.api_url."""

    backend = "http"

    def __init__(self, base_url: str, timeout: float = 120.0, transport: httpx.BaseTransport | None = None,
                 api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=5.0),
                                  transport=transport, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, ok_statuses: tuple[int, ...] = (), **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.ConnectError as e:
            raise errors.StoreUnavailable(
                f"cannot reach the drugrag API at {self.base_url} — is `drugrag serve` running? ({e})") from e
        except httpx.TimeoutException as e:
            raise errors.StoreUnavailable(f"the drugrag API at {self.base_url} did not answer in time") from e
        except httpx.HTTPError as e:
            raise errors.DrugRagError(f"request to the drugrag API failed: {e}") from e
        if r.status_code >= 400 and r.status_code not in ok_statuses:
            raise error_from_response(r)
        try:
            return r.json()
        except ValueError as e:
            raise errors.DrugRagError(f"the API sent a response that is not JSON (HTTP {r.status_code})") from e

    @staticmethod
    def _turns(history: Sequence[Turn | dict[str, Any]]) -> list[dict[str, Any]]:
        return [h.model_dump() if isinstance(h, Turn) else dict(h) for h in history]

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        data = self._request("POST", "/v1/ask", json={"question": question, "history": self._turns(history)})
        return Answer.model_validate(data)

    def ask_stream(self, question: str, history: Sequence[Turn] = ()) -> Iterator[dict[str, Any]]:
        body = {"question": question, "history": self._turns(history)}
        try:
            with self._http.stream("POST", "/v1/ask/stream", json=body) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_from_response(r)
                event = None
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event:
                        data = line[5:].strip()
                        yield {"event": event, "data": data if event == "answer" else json.loads(data)}
                        event = None
        except httpx.ConnectError as e:
            raise errors.StoreUnavailable(f"cannot reach the drugrag API at {self.base_url} ({e})") from e
        except httpx.TimeoutException as e:
            raise errors.StoreUnavailable(f"the drugrag API at {self.base_url} did not answer in time") from e

    def interactions(self, drugs: Sequence[str]) -> Answer:
        return Answer.model_validate(self._request("POST", "/v1/interactions", json={"drugs": list(drugs)}))

    def search(self, q: str, limit: int = 20, types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"q": q, "limit": max(1, min(limit, 100))}
        if types:
            params["types"] = ",".join(types)
        return self._request("GET", "/v1/graph/entities", params=params)

    def drug(self, drug_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/drugs/{quote(drug_id, safe='')}")

    def label(self, label_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/labels/{quote(label_id, safe='')}")

    def neighbourhood(self, node_id: str, node_type: str | None = None, depth: int = 1,
                      types: Sequence[str] | None = None, limit: int = 100) -> dict[str, Any]:
        params: dict[str, Any] = {"id": node_id, "depth": depth, "limit": limit}
        if node_type:
            params["type"] = node_type
        if types:
            params["types"] = ",".join(types)
        return self._request("GET", "/v1/graph/neighbourhood", params=params)

    def kb_stats(self) -> dict[str, Any]:
        return self._request("GET", "/v1/kb")

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/healthz", ok_statuses=(503,))


def make_client(settings: Settings | None = None) -> Client:
    """The client settings.ui_backend asks for (no Streamlit caching here; see ui.components.client)."""
    s = settings or get_settings()
    if s.ui_backend == "http":
        return HttpClient(s.api_url, api_key=s.client_api_key.get_secret_value() if s.client_api_key else None)
    from rag.service import DrugService

    return InProcessClient(DrugService(s))
