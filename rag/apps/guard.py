"""The HTTP edge's guard: one pure ASGI middleware in front of the API (and the MCP HTTP app).

For every HTTP request, in this order:
  request id    X-Request-ID kept when sane (else a new one), set for the logs, echoed in the response;
  Host check    the Host header must match settings.trusted_hosts (DNS-rebinding guard)          → 400 InvalidHost
  URL length    path + query over 4 KiB                                                           → 414 UriTooLong
  API keys      protected paths (/v1/*, /mcp) need `Authorization: Bearer KEY` or `X-API-Key`
                when settings.api_keys is set; keys are compared as SHA-256 digests              → 401 Unauthorized
  rate limit    a token bucket per key (per client address without keys)                         → 429 + Retry-After
  body size     at most settings.max_body_bytes, read here before the app sees it                 → 413 PayloadTooLarge
  back-pressure at most max_inflight requests run; max_queue more wait up to queue_timeout_s      → 503 + Retry-After
  access log    one line per request (method, path without query, status, ms, key id, client)

Bodies and query strings are never logged: questions may carry health information.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from pydantic import SecretStr

from rag.apps.api_models import ErrorBody
from rag.core.errors import InvalidInput
from rag.core.obs import request_id, valid_request_id
from rag.core.settings import Settings

log = logging.getLogger("drugrag.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_URL_BYTES = 4096
MIN_KEY_CHARS = 16
PROTECTED = ("/v1/", "/mcp")
UNGATED = ("/healthz", "/livez")


class KeyRing:
    """Accepted API keys as SHA-256 digests: plain keys are hashed at start, `sha256:<hex>` entries are taken as is."""

    def __init__(self, keys: Sequence[SecretStr | str]) -> None:
        self._digests: list[bytes] = []
        for k in keys:
            raw = k.get_secret_value() if isinstance(k, SecretStr) else str(k)
            raw = raw.strip()
            if raw.startswith("sha256:"):
                try:
                    d = bytes.fromhex(raw[7:])
                except ValueError as e:
                    raise InvalidInput("an API key entry 'sha256:…' must be 64 hex digits") from e
                if len(d) != 32:
                    raise InvalidInput("an API key entry 'sha256:…' must be 64 hex digits")
            elif len(raw) < MIN_KEY_CHARS:
                raise InvalidInput(f"API keys must have at least {MIN_KEY_CHARS} characters")
            else:
                d = hashlib.sha256(raw.encode()).digest()
            self._digests.append(d)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: str | None) -> str | None:
        """A short id of the matching key (first 8 hex digits of its digest), or None."""
        if not presented:
            return None
        d = hashlib.sha256(presented.encode()).digest()
        found = None
        for known in self._digests:  # compare with every key, in constant time each
            if hmac.compare_digest(d, known):
                found = known
        return found.hex()[:8] if found else None


class RateLimiter:
    """Token buckets: `burst` requests at once, refilled at `per_minute`/60 per second; bounded memory."""

    def __init__(self, per_minute: int, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, who: str, now: float | None = None) -> float:
        """0 when allowed (a token is taken), else the seconds until the next token."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[who] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


class Gate:
    """At most `slots` requests at once and `queue` more waiting (each up to `timeout` s); the rest are refused.

    Runs on the server's event loop only (no threads), so plain counters suffice."""

    def __init__(self, slots: int, queue: int, timeout: float) -> None:
        self.slots, self.queue, self.timeout = slots, queue, timeout
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._avg_s = 0.05  # running mean of service time, for Retry-After

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> bool:
        if self.busy < self.slots and not self.waiting:
            self.busy += 1
            return True
        if self.waiting >= self.queue:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(fut, self.timeout)
            return True  # the slot was handed over by release()
        except TimeoutError:
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(0.0)
            raise
        finally:
            try:
                self._waiters.remove(fut)
            except ValueError:
                pass

    def release(self, seconds: float) -> None:
        if seconds:
            self._avg_s = 0.9 * self._avg_s + 0.1 * seconds
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # hand the slot over: busy stays the same
                return
        self.busy -= 1

    def retry_after(self) -> int:
        return max(1, math.ceil(self._avg_s * (self.waiting + self.slots) / self.slots))


def host_allowed(host_header: str | None, patterns: Sequence[str]) -> bool:
    if "*" in patterns:
        return True
    if not host_header:
        return False
    h = host_header.strip().lower()
    host = h[1:h.index("]")] if h.startswith("[") and "]" in h else h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    for p in patterns:
        p = p.lower().strip("[]")
        if host == p or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k == name:
            return v.decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return _header(scope, b"x-api-key")


async def send_error(send: Send, status: int, error: str, detail: str, headers: Sequence[tuple[str, str]] = ()
                     ) -> None:
    body = ErrorBody.of(error, detail, request_id.get()).model_dump_json().encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class ApiGuard:
    def __init__(self, app: ASGIApp, settings: Settings, protected: Sequence[str] = PROTECTED) -> None:
        self.app = app
        self.settings = settings
        self.protected = tuple(protected)
        self.keys = KeyRing(settings.api_keys)
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst) \
            if settings.rate_limit_per_minute else None
        self.gate = Gate(settings.max_inflight, settings.max_queue, settings.queue_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = valid_request_id(_header(scope, b"x-request-id")) or uuid.uuid4().hex
        token = request_id.set(rid)
        t0 = time.perf_counter()
        info: dict[str, Any] = {"status": 0, "key": "-"}

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self._handle(scope, receive, send_wrapped, info)
        except Exception:  # the last line of defence: one error body, the traceback in the log
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not info["status"]:
                await send_error(send_wrapped, 500, "InternalError",
                                 "internal error; the request id finds it in the server log")
        finally:
            ms = (time.perf_counter() - t0) * 1000
            if self.settings.access_log:
                client = (scope.get("client") or ("-",))[0]
                log.info("request", extra={"fields": {
                    "method": scope.get("method"), "path": scope.get("path"), "status": info["status"],
                    "ms": round(ms, 1), "key": info["key"], "client": client}})
            request_id.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, info: dict[str, Any]) -> None:
        s = self.settings
        path: str = scope.get("path") or "/"
        if not host_allowed(_header(scope, b"host"), s.trusted_hosts):
            await send_error(send, 400, "InvalidHost", "this Host header is not served here (trusted_hosts)")
            return
        if len(path.encode()) + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
            await send_error(send, 414, "UriTooLong", f"the URL is longer than {MAX_URL_BYTES} bytes")
            return
        guarded = path.startswith(self.protected)
        who = (scope.get("client") or ("-",))[0]
        if guarded and self.keys.enabled:
            kid = self.keys.identify(presented_key(scope))
            if kid is None:
                await send_error(send, 401, "Unauthorized", "missing or unknown API key: send "
                                 "`Authorization: Bearer KEY` or `X-API-Key: KEY`", [("www-authenticate", "Bearer")])
                return
            who = info["key"] = kid
        if guarded and self.limiter is not None:
            wait = self.limiter.take(who)
            if wait > 0:
                await send_error(send, 429, "RateLimited", f"rate limit of {s.rate_limit_per_minute} requests per "
                                 "minute reached; retry later", [("retry-after", str(math.ceil(wait)))])
                return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            body = await self._read_body(scope, receive)
            if body is None:
                await send_error(send, 413, "PayloadTooLarge",
                                 f"the request body is larger than {s.max_body_bytes} bytes")
                return
            receive = _replay(body, receive)
        if path in UNGATED or not guarded:
            await self.app(scope, receive, send)
            return
        if not await self.gate.acquire():
            await send_error(send, 503, "Overloaded", "the server is busy; retry shortly",
                             [("retry-after", str(self.gate.retry_after()))])
            return
        t = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release(time.perf_counter() - t)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        limit = self.settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the client's disconnect, as the server would

    return replay
