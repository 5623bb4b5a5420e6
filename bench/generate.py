"""Benchmark answer generation: throughput, time to first token and JSON validity, at several concurrency levels.

    python -m bench.generate --backend openai --url http://127.0.0.1:8001/v1 --concurrency 1,8,32 \\
        --requests 32 --out reports/bench
    python -m bench.generate --backend openai --model PATH ...      # starts bench.model_server on PATH itself
    python -m bench.generate --backend transformers --model PATH ... # in process, static batches of c

Prompts are the real ones: the generation prompt (rules + fenced sources + question) over Evidence built from real
openFDA label sections, questions in English and Chinese. Each concurrency level runs in two modes, constrained
(the generation JSON schema, as the service uses it) and unconstrained (the baseline), so one run gives both
ratios: aggregate tokens/s at c vs c=1, and constrained vs unconstrained at each c. JSON validity = the output
parses and validates against the generation schema. Results: DIR/bench_generate.json and DIR/bench_generate.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.answer.gen_schema import generation_schema, parse_json, schema_errors
from rag.answer.prompts import build_messages
from rag.core.types import Evidence, Source

log = logging.getLogger("bench.generate")

SECTIONS = [("indications_and_usage", "indications"), ("dosage_and_administration", "dosage"),
            ("contraindications", "contraindications"), ("drug_interactions", "interactions"),
            ("warnings_and_cautions", "warnings")]
QUESTIONS = [
    ("en", "dosage", "What is the recommended dose of {d}?"),
    ("zh", "indications", "{d}的适应症是什么？"),
    ("en", "interaction", "Which drugs interact with {d}?"),
    ("zh", "dosage", "{d}的用法用量是什么？"),
    ("en", "contraindications", "Who should not take {d}?"),
]


def bench_evidence(data_dir: Path, n: int, passage_chars: int = 900) -> list[Evidence]:
    """n Evidence objects over real openFDA labels (up to 4 sections each, one passage per section)."""
    path = data_dir / "openfda" / "drug-label-0001-of-0001.json.zip"
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read(z.namelist()[0]))
    out: list[Evidence] = []
    for rec in data["results"]:
        if len(out) >= n:
            break
        names = (rec.get("openfda") or {}).get("generic_name") or []
        if not names or not all(rec.get(f) for f, _ in SECTIONS[:2]):
            continue
        drug = names[0].title()
        sources: list[Source] = []
        for field_name, key in SECTIONS:
            if not rec.get(field_name) or len(sources) >= 4:
                continue
            text = rec[field_name][0]
            sources.append(Source(sid=f"S{len(sources) + 1}", kind="label", doc_id=rec["set_id"], title=drug,
                                  section=key, section_name=field_name, version=rec.get("version"),
                                  text=text[:passage_chars], offset=0, section_text=text))
        lang, intent, tmpl = QUESTIONS[len(out) % len(QUESTIONS)]
        out.append(Evidence(question=tmpl.format(d=drug), language=lang, intent=intent,  # type: ignore[arg-type]
                            sections=[s.section or "" for s in sources], sources=sources,
                            retrieved_labels=[rec["set_id"]]))
    if len(out) < n:  # fewer usable labels than requests: reuse them
        out = [out[i % len(out)] for i in range(n)]
    return out


@dataclass
class Sample:
    ok: bool
    tokens: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = None
    json_valid: bool = False
    schema_valid: bool = False
    finish_reason: str | None = None
    error: str | None = None


@dataclass
class Level:
    backend: str
    mode: str  # constrained | unconstrained
    concurrency: int
    requests: int
    wall_s: float
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.samples if s.ok]
        toks = sum(s.tokens for s in ok)
        ttfts = [s.ttft_s for s in ok if s.ttft_s is not None]
        decode = [s.tokens / (s.latency_s - s.ttft_s) for s in ok
                  if s.ttft_s is not None and s.latency_s > s.ttft_s and s.tokens > 1]
        reasons: dict[str, int] = {}
        for s in ok:
            reasons[s.finish_reason or "?"] = reasons.get(s.finish_reason or "?", 0) + 1
        return {
            "backend": self.backend, "mode": self.mode, "concurrency": self.concurrency,
            "requests": self.requests, "ok": len(ok), "errors": len(self.samples) - len(ok),
            "wall_s": round(self.wall_s, 3), "tokens": toks,
            "agg_tok_s": round(toks / self.wall_s, 2) if self.wall_s > 0 else 0.0,
            "per_req_tok_s_mean": round(statistics.fmean(s.tokens / s.latency_s for s in ok if s.latency_s > 0), 2)
            if ok else 0.0,
            "per_req_decode_tok_s_mean": round(statistics.fmean(decode), 2) if decode else None,
            "ttft_p50_s": _pct(ttfts, 50), "ttft_p95_s": _pct(ttfts, 95),
            "latency_p50_s": _pct([s.latency_s for s in ok], 50), "latency_p95_s": _pct([s.latency_s for s in ok], 95),
            "json_valid_rate": round(sum(s.json_valid for s in ok) / len(ok), 4) if ok else 0.0,
            "schema_valid_rate": round(sum(s.schema_valid for s in ok) / len(ok), 4) if ok else 0.0,
            "finish_reasons": reasons,
            "first_error": next((s.error for s in self.samples if s.error), None),
        }


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (k - lo), 4)


def _validity(text: str, ev: Evidence) -> tuple[bool, bool]:
    try:
        obj = parse_json(text)
    except ValueError:
        return False, False
    if not isinstance(obj, dict):
        return False, False
    return True, not schema_errors(obj, generation_schema([s.sid for s in ev.sources]))


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible server


async def _one_openai(client: Any, url: str, model: str, ev: Evidence, constrained: bool, max_tokens: int) -> Sample:
    body: dict[str, Any] = {"model": model, "messages": build_messages(ev.question, ev, (), ev.language),
                            "temperature": 0, "max_tokens": max_tokens, "stream": True,
                            "stream_options": {"include_usage": True},
                            "chat_template_kwargs": {"enable_thinking": False}}
    if constrained:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "drug_answer", "schema": generation_schema([s.sid for s in ev.sources]), "strict": True}}
    t0 = time.perf_counter()
    ttft = None
    parts: list[str] = []
    usage: dict[str, Any] = {}
    reason = None
    chunks = 0
    try:
        async with client.stream("POST", f"{url}/chat/completions", json=body) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                return Sample(ok=False, error=f"HTTP {resp.status_code}: {resp.text[:200]}")
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    return Sample(ok=False, error=str(chunk["error"]))
                usage = chunk.get("usage") or usage
                for ch in chunk.get("choices") or []:
                    piece = (ch.get("delta") or {}).get("content")
                    if piece:
                        if ttft is None:
                            ttft = time.perf_counter() - t0
                        parts.append(piece)
                        chunks += 1
                    reason = ch.get("finish_reason") or reason
    except Exception as e:  # noqa: BLE001 - a benchmark records failures, it does not stop on them
        return Sample(ok=False, error=f"{type(e).__name__}: {e}")
    text = "".join(parts)
    jv, sv = _validity(text, ev)
    return Sample(ok=True, tokens=int(usage.get("completion_tokens") or chunks), latency_s=time.perf_counter() - t0,
                  ttft_s=ttft, json_valid=jv, schema_valid=sv, finish_reason=reason)


async def _level_openai(url: str, model: str, evs: list[Evidence], c: int, constrained: bool,
                        max_tokens: int, timeout: float) -> Level:
    import httpx

    sem = asyncio.Semaphore(c)
    limits = httpx.Limits(max_connections=c + 4, max_keepalive_connections=c + 4)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        async def run(ev: Evidence) -> Sample:
            async with sem:
                return await _one_openai(client, url, model, ev, constrained, max_tokens)

        t0 = time.perf_counter()
        samples = await asyncio.gather(*(run(ev) for ev in evs))
        wall = time.perf_counter() - t0
    return Level("openai", "constrained" if constrained else "unconstrained", c, len(evs), wall, list(samples))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model_path: str, max_batch: int, timeout: float = 300) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.model_server", "--model", model_path, "--port", str(port),
                             "--max-batch", str(max_batch), "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"model server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).json().get("status") == "ok":
                return proc, f"{url}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("model server did not start")


# ---------------------------------------------------------------------------------------------------------------
# in-process transformers


def _level_transformers(gen: Any, evs: list[Evidence], c: int, constrained: bool) -> Level:
    samples: list[Sample] = []
    t0 = time.perf_counter()
    for i in range(0, len(evs), c):
        chunk = evs[i: i + c]
        reqs = [gen.request(ev.question, ev, (), constrained=constrained) for ev in chunk]
        gen.engine.run(reqs)
        for r, ev in zip(reqs, chunk, strict=True):
            if r.error and not r.token_ids:
                samples.append(Sample(ok=False, error=r.error))
                continue
            jv, sv = _validity(r.text, ev)
            samples.append(Sample(ok=True, tokens=r.tokens_out, latency_s=r.seconds, ttft_s=r.ttft,
                                  json_valid=jv, schema_valid=sv, finish_reason=r.finish_reason))
    wall = time.perf_counter() - t0
    return Level("transformers", "constrained" if constrained else "unconstrained", c, len(evs), wall, samples)


# ---------------------------------------------------------------------------------------------------------------


def ratios(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(lv["mode"], lv["concurrency"]): lv for lv in levels}
    out = []
    for lv in levels:
        base = by.get((lv["mode"], min(c for m, c in by if m == lv["mode"])))
        unc = by.get(("unconstrained", lv["concurrency"]))
        row = {"mode": lv["mode"], "concurrency": lv["concurrency"],
               "agg_tok_s_vs_c1": round(lv["agg_tok_s"] / base["agg_tok_s"], 3) if base and base["agg_tok_s"] else None,
               "ttft_p50_vs_c1": round(lv["ttft_p50_s"] / base["ttft_p50_s"], 3)
               if base and base["ttft_p50_s"] and lv["ttft_p50_s"] else None}
        if lv["mode"] == "constrained" and unc and unc["agg_tok_s"]:
            row["constrained_vs_unconstrained_tok_s"] = round(lv["agg_tok_s"] / unc["agg_tok_s"], 3)
        out.append(row)
    return out


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        "# Generation benchmark",
        "",
        f"- backend: `{cfg['backend']}`, model: `{cfg['model']}`, url: `{cfg.get('url')}`",
        f"- requests per level: {cfg['requests']} (at least the concurrency), max_tokens {cfg['max_tokens']}, "
        f"temperature 0; prompts: rules + fenced sources from real openFDA labels (en + zh questions)",
        f"- machine: {cfg['machine']}",
        f"- date: {report['date']}",
        "",
        "| mode | c | req | ok | agg tok/s | per-req tok/s | decode tok/s | TTFT p50 s | TTFT p95 s | "
        "latency p50 s | latency p95 s | JSON valid | schema valid | finish |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in report["levels"]:
        fin = ", ".join(f"{k} {v}" for k, v in sorted(lv["finish_reasons"].items()))
        lines.append(
            f"| {lv['mode']} | {lv['concurrency']} | {lv['requests']} | {lv['ok']} | {lv['agg_tok_s']} | "
            f"{lv['per_req_tok_s_mean']} | {lv['per_req_decode_tok_s_mean']} | {lv['ttft_p50_s']} | "
            f"{lv['ttft_p95_s']} | "
            f"{lv['latency_p50_s']} | {lv['latency_p95_s']} | {lv['json_valid_rate']:.0%} | "
            f"{lv['schema_valid_rate']:.0%} | {fin} |"
        )
    lines += [
        "",
        "Ratios (baseline: the lowest concurrency of the same mode; and unconstrained at the same c):",
        "",
        "| mode | c | agg tok/s vs c1 | TTFT p50 vs c1 | constrained / unconstrained tok/s |",
        "|---|---|---|---|---|",
    ]
    for r in report["ratios"]:
        lines.append(
            f"| {r['mode']} | {r['concurrency']} | {r['agg_tok_s_vs_c1']} | {r['ttft_p50_vs_c1']} | "
            f"{r.get('constrained_vs_unconstrained_tok_s', '')} |"
        )
    errs = [lv for lv in report["levels"] if lv["errors"]]
    if errs:
        lines += [
            "",
            "Errors: "
            + "; ".join(f"{lv['mode']} c={lv['concurrency']}: {lv['errors']} ({lv['first_error']})" for lv in errs),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["openai", "transformers"], required=True)
    ap.add_argument(
        "--model",
        default="",
        help="model directory (transformers, or openai without --url); "
        "the served model name with --url (default: the first served)",
    )
    ap.add_argument("--url", default="", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--requests", type=int, default=16, help="requests per level (at least the concurrency)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--modes", default="constrained,unconstrained")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

    from rag.core.settings import get_settings

    data_dir = args.data_dir or get_settings().data_dir
    levels_c = sorted({int(x) for x in args.concurrency.split(",") if x.strip()})
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"constrained", "unconstrained"}:
        ap.error("--modes takes constrained and/or unconstrained")
    n_max = max(args.requests, max(levels_c))
    evs_all = bench_evidence(Path(data_dir), n_max + 1)
    warm, evs_all = evs_all[0], evs_all[1:]
    levels: list[Level] = []
    proc = None
    url = args.url.rstrip("/")
    model_name = args.model
    try:
        if args.backend == "openai":
            import httpx

            if not url:
                if not args.model:
                    ap.error("--backend openai needs --url or --model PATH (to start bench.model_server)")
                proc, url = start_server(args.model, max_batch=max(levels_c))
                log.info("started bench.model_server at %s", url)
            served = httpx.get(f"{url}/models", timeout=30).json()["data"]
            if not model_name or proc is not None:
                model_name = served[0]["id"]
            asyncio.run(_level_openai(url, model_name, [warm], 1, True, args.max_tokens, args.timeout))  # warm-up
            for mode in modes:
                for c in levels_c:
                    n = max(args.requests, c)
                    log.info("openai %s c=%d: %d requests", mode, c, n)
                    levels.append(
                        asyncio.run(
                            _level_openai(
                                url, model_name, evs_all[:n], c, mode == "constrained", args.max_tokens, args.timeout
                            )
                        )
                    )
                    log.info("%s", levels[-1].summary())
        else:
            from rag.generation.in_process import TransformersGenerator

            if not args.model:
                ap.error("--backend transformers needs --model PATH")
            gen = TransformersGenerator(args.model, max_new_tokens=args.max_tokens)
            _level_transformers(gen, [warm], 1, True)  # load + warm-up
            for mode in modes:
                for c in levels_c:
                    n = max(args.requests, c)
                    log.info("transformers %s c=%d: %d requests", mode, c, n)
                    levels.append(_level_transformers(gen, evs_all[:n], c, mode == "constrained"))
                    log.info("%s", levels[-1].summary())
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    summaries = [lv.summary() for lv in levels]
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": {
            "backend": args.backend,
            "model": model_name or args.model,
            "url": url or None,
            "concurrency": levels_c,
            "requests": args.requests,
            "max_tokens": args.max_tokens,
            "modes": modes,
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}"
            + (f", load avg {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""),
        },
        "levels": summaries,
        "ratios": ratios(summaries),
        "samples": {f"{lv.mode}@{lv.concurrency}": [asdict(s) for s in lv.samples] for lv in levels},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_generate.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (args.out / "bench_generate.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
