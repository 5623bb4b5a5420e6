"""Load test of the API as deployed: `drugrag serve` in its own process on 127.0.0.1, N concurrent clients for S s.

    python -m bench.load [--clients 50] [--seconds 60] [--home DIR] [--no-corrupt-check] [--json]

Bounded on purpose: at most 200 clients and 600 s, loopback only. Each client has its own API key and loops over
real dev questions (label_qa_dev + interaction_qa_dev) on a mix of routes — /v1/ask 70 %, the OpenAI-compatible
/v1/chat/completions 15 %, /v1/search 10 %, /v1/interactions 5 % — and honours Retry-After on 429/503, as a
well-behaved client does. Reported: status counts, throughput, latency percentiles of accepted (2xx) requests, and
any 5xx other than the deliberate 503 (the run exits 1 if there is one, or if the corrupt-store case is not 503).

The corrupt-store case copies the KB, truncates a segment's dense-vector `chunk_0.mmap`, serves the copy and checks
that /v1/ask and /healthz answer 503 (embedded vector store only). Client and server share the machine's cores:
on a 2-core box the load generator costs the server some throughput, so read the figures as a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from rag.core.settings import PROJECT_ROOT, get_settings

MAX_CLIENTS = 200
MAX_SECONDS = 600
MIX = (("ask", 0.70), ("chat", 0.15), ("search", 0.10), ("interactions", 0.05))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(home: Path, keys: list[str], extra_env: dict[str, str] | None = None, ready_s: float = 600.0
          ) -> Iterator[str]:
    """`drugrag serve` on a free loopback port over the KB in `home`; yields its URL once /healthz answers."""
    port = _free_port()
    env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_API_KEYS": ",".join(keys),
           "DRUGRAG_ACCESS_LOG": "false", **(extra_env or {})}
    log = tempfile.NamedTemporaryFile("w+", prefix="drugrag-load-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "rag.apps.cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"drugrag serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/livez", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"drugrag serve not up in {ready_s:.0f} s; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def questions(data_dir: Path) -> tuple[list[str], list[list[str]]]:
    qs: list[str] = []
    pairs: list[list[str]] = []
    for name in ("label_qa_dev.jsonl", "interaction_qa_dev.jsonl"):
        with (data_dir / "eval" / name).open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    q = json.loads(line)
                    qs.append(q["question"])
                    drugs = (q.get("expected") or {}).get("interaction", {}).get("drugs")
                    if drugs:
                        pairs.append(list(drugs))
    return qs, pairs


def _request(kind: str, rng: random.Random, qs: list[str], pairs: list[list[str]]) -> tuple[str, str, Any]:
    q = rng.choice(qs)
    if kind == "chat":
        return "POST", "/v1/chat/completions", {"model": "drugrag", "messages": [{"role": "user", "content": q}]}
    if kind == "search":
        return "GET", "/v1/search", {"q": q.split()[0][:50] or "aspirin", "limit": 10}
    if kind == "interactions" and pairs:
        return "POST", "/v1/interactions", {"drugs": rng.choice(pairs)}
    return "POST", "/v1/ask", {"question": q}


async def client(i: int, url: str, key: str, until: float, qs: list[str], pairs: list[list[str]],
                 out: list[tuple[str, int, float]]) -> None:
    rng = random.Random(i)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60) as http:
        while time.monotonic() < until:
            kind = rng.choices(kinds, weights)[0]
            method, path, payload = _request(kind, rng, qs, pairs)
            t = time.perf_counter()
            try:
                if method == "GET":
                    r = await http.get(path, params=payload)
                else:
                    r = await http.post(path, json=payload)
                status = r.status_code
            except httpx.HTTPError:
                status = 0  # transport failure: counted, never hidden
                r = None
            out.append((kind, status, time.perf_counter() - t))
            if r is not None and status in (429, 503):
                wait = float(r.headers.get("retry-after", "1"))
                await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))


def _pct(xs: list[float], p: float) -> float | None:
    return round(float(np.percentile(xs, p)) * 1000, 1) if xs else None


def run_load(url: str, keys: list[str], seconds: float, qs: list[str], pairs: list[list[str]]) -> dict[str, Any]:
    out: list[tuple[str, int, float]] = []
    until = time.monotonic() + seconds
    t0 = time.perf_counter()

    async def main() -> None:
        await asyncio.gather(*(client(i, url, k, until, qs, pairs, out) for i, k in enumerate(keys)))

    asyncio.run(main())
    wall = time.perf_counter() - t0
    codes = Counter(s for _, s, _ in out)
    ok = [d for _, s, d in out if 200 <= s < 300]
    by_kind = {k: _pct([d for kk, s, d in out if kk == k and 200 <= s < 300], 95) for k, _ in MIX}
    bad = {str(s): n for s, n in codes.items() if s == 0 or (s >= 500 and s != 503)}
    return {
        "clients": len(keys), "seconds": round(wall, 1), "requests": len(out),
        "accepted_per_s": round(len(ok) / wall, 1), "status": {str(k): v for k, v in sorted(codes.items())},
        "accepted_ms": {"p50": _pct(ok, 50), "p95": _pct(ok, 95), "p99": _pct(ok, 99)},
        "accepted_p95_ms_by_route": by_kind, "unexpected": bad,
    }


def corrupt_store_case(home: Path, key: str) -> dict[str, Any]:
    """Serve a copy of the KB with a truncated dense-vector file: ask and readiness must both say 503."""
    edge = home / "qdrant-edge"
    if not edge.exists():
        return {"skipped": "not an embedded vector store"}
    with tempfile.TemporaryDirectory(prefix="drugrag-corrupt-") as tmp:
        copy = Path(tmp) / "kb"
        shutil.copytree(home, copy, ignore=shutil.ignore_patterns(".drugrag.lock", "models", "cache"))
        chunk = sorted(copy.glob("qdrant-edge/segments/*/vector_storage-dense/vectors/chunk_0.mmap"))[0]
        os.truncate(chunk, chunk.stat().st_size // 2)  # half: some queries alone would still succeed
        s = get_settings()
        with serve(copy, [key], {"DRUGRAG_EMBEDDING_MODEL": s.embedding_model_path}) as url:
            ask = httpx.post(f"{url}/v1/ask", json={"question": "What is naproxen used for?"},
                             headers={"X-API-Key": key}, timeout=60)
            health = httpx.get(f"{url}/healthz", timeout=60)
        return {"ask_status": ask.status_code, "ask_error": (ask.json().get("error") or {}).get("type"),
                "healthz_status": health.status_code, "path_in_body": tmp in ask.text or tmp in health.text}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--home", type=Path, default=None, help="the KB to serve (default: DRUGRAG_HOME)")
    ap.add_argument("--no-corrupt-check", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    if not 1 <= a.clients <= MAX_CLIENTS or not 1 <= a.seconds <= MAX_SECONDS:
        ap.error(f"--clients must be 1..{MAX_CLIENTS} and --seconds 1..{MAX_SECONDS}")
    import torch

    s = get_settings()
    home = (a.home or s.home).resolve()
    qs, pairs = questions(s.data_dir)
    keys = [f"load-{i:03d}-{secrets.token_hex(12)}" for i in range(a.clients)]
    with serve(home, keys) as url:
        httpx.get(f"{url}/healthz", timeout=120)  # warm (the API warms up before it listens)
        report: dict[str, Any] = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                                  "cpus": os.cpu_count(), "home": str(home),
                                  "load": run_load(url, keys, a.seconds, qs, pairs)}
    if not a.no_corrupt_check:
        report["corrupt_store"] = corrupt_store_case(home, keys[0])
    cs = report.get("corrupt_store", {})
    failed = bool(report["load"]["unexpected"]) or ("ask_status" in cs and (
        cs["ask_status"] != 503 or cs["healthz_status"] != 503 or cs["path_in_body"]))
    if a.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        ld = report["load"]
        print(f"cpu capability: {report['cpu_capability']} · cpus {report['cpus']} · KB {home}")
        print(f"{ld['clients']} clients × {ld['seconds']} s: {ld['requests']} requests, "
              f"{ld['accepted_per_s']} accepted/s, statuses {ld['status']}")
        print(f"accepted latency ms: p50 {ld['accepted_ms']['p50']} · p95 {ld['accepted_ms']['p95']} · "
              f"p99 {ld['accepted_ms']['p99']} · p95 by route {ld['accepted_p95_ms_by_route']}")
        print(f"unexpected (5xx other than 503, transport errors): {ld['unexpected'] or 'none'}")
        if cs:
            print(f"corrupt store: {cs}")
        print("FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
