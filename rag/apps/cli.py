"""The `drugrag` console script: setup, ingest, ask, eval, serve, ui. Every command goes through rag.service."""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.core.errors import DrugRagError
from rag.core.settings import PROJECT_ROOT, Settings, get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Knowledge-grounded drug assistant.")
log = logging.getLogger("drugrag")


def _setup_logging(verbose: bool) -> None:
    from rag.core.obs import setup_logging

    setup_logging(logging.INFO if verbose else logging.WARNING, get_settings().log_format)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_bind(host: str, allow_unauthenticated: bool) -> Settings:
    """Beyond loopback, serving needs API keys unless the operator says otherwise on purpose."""
    s = get_settings()
    if not _is_loopback(host) and not s.api_keys and not allow_unauthenticated:
        _fail(ValueError(f"refusing to serve on {host} without API keys: set DRUGRAG_API_KEYS (and "
                         "DRUGRAG_TRUSTED_HOSTS), or pass --allow-unauthenticated to serve everyone who can reach it"))
    if not _is_loopback(host) and not s.api_keys:
        log.warning("serving on %s WITHOUT API keys (--allow-unauthenticated)", host)
    logging.getLogger().setLevel(logging.INFO)  # access logs
    return s


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress to stderr")] = False) -> None:
    _setup_logging(verbose)


@app.command()
def setup(force: bool = False) -> None:
    """Build the default embedding model (multilingual-e5-small) without a model hub: into DRUGRAG_HOME, or into
    the directory DRUGRAG_EMBEDDING_MODEL names (compose's one-shot `setup` service fills the shared volume so)."""
    s = get_settings()
    out = Path(s.embedding_model_path).expanduser()
    if s.embedding_model == "hash" or (s.embedding_model and not _names_a_path(s.embedding_model)):
        typer.echo(f"DRUGRAG_EMBEDDING_MODEL is {s.embedding_model!r} (not a local directory); nothing to build")
        return
    if (out / "modules.json").exists() and not force:
        typer.echo(f"embedding model already at {out}")
        _prepare_backend(s)
        return
    tool = Path(s.embedding_build_tool) if s.embedding_build_tool else \
        PROJECT_ROOT.parent / "shared" / "tools" / "build_multilingual_e5.py"
    if not tool.exists():
        _fail(
            FileNotFoundError(
                f"{tool} not found: set DRUGRAG_EMBEDDING_BUILD_TOOL to the builder script, or put a "
                f"sentence-transformers model at {out}, or set DRUGRAG_EMBEDDING_MODEL to a model id"
            )
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([sys.executable, str(tool), str(out)], capture_output=True, text=True)
    if p.returncode != 0:
        _fail(RuntimeError(f"building the embedding model failed:\n{p.stderr[-3000:]}"))
    typer.echo(f"embedding model written to {out}")
    _prepare_backend(s)


def _prepare_backend(s: Settings) -> None:
    """Choose this machine's embedding backend now (`embedding_backend=auto`: the ONNX export, its int8
    quantisation and the timing of every backend, 40-90 s on 2 cores, once per machine and cached in
    DRUGRAG_MACHINE_CACHE), so that the first ingest starts embedding at once instead of paying it."""
    from rag.components import make_embedder

    try:
        emb = make_embedder(s)
        backend = getattr(emb, "backend", None)
        cal = getattr(emb, "calibration", None) or {}
    except DrugRagError as e:  # the model is there; ingest will measure (or fail) with the same message
        typer.echo(f"embedding backend not prepared: {e}", err=True)
        return
    if backend is None:
        return
    how = "cached for this machine" if cal.get("cached") else f"measured in {cal.get('seconds', 0)} s"
    typer.echo(f"embedding backend: {backend} ({how})")


def _names_a_path(value: str) -> bool:
    """A local directory (absolute, ./relative, ~) rather than a model id such as intfloat/multilingual-e5-small."""
    return value.startswith(("/", ".", "~")) or Path(value).expanduser().exists()


@app.command()
def ingest(
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
    delete: Annotated[list[str] | None, typer.Option("--delete", help="remove this label id from both stores")] = None,
    limit: Annotated[int | None, typer.Option(help="at most N labels per source")] = None,
) -> None:
    """Load every configured source into the vector store and the graph (idempotent, restartable)."""
    from rag.components import make_embedder, make_graph_store, make_vector_store
    from rag.ingest.pipeline import delete_label, run_ingest

    s: Settings = get_settings()
    if limit is not None:
        s = s.model_copy(update={"limit_labels": limit})
    try:
        vstore = make_vector_store(s)
        gstore = make_graph_store(s)
        try:
            if delete:
                res = [delete_label(i, vstore, gstore) for i in delete]
                typer.echo(
                    json.dumps(res, ensure_ascii=False)
                    if as_json
                    else "\n".join(
                        f"{r['label_id']}: {r['deleted_chunks']} chunks, "
                        f"label node {'deleted' if r['deleted_label_node'] else 'absent'}"
                        for r in res
                    )
                )
                return
            report = run_ingest(s, vstore, gstore, make_embedder(s), progress=not as_json)
        finally:
            vstore.close()
            gstore.close()
    except DrugRagError as e:
        _fail(e)
    s.home.mkdir(parents=True, exist_ok=True)
    (s.home / "ingest_report.json").write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    typer.echo(f"labels {report.labels} · chunks {report.chunks} · nodes {report.nodes} · edges {report.edges}")
    typer.echo(
        f"added: {report.added} · unchanged labels {report.unchanged_labels} · replaced {report.replaced_labels}"
    )
    typer.echo("seconds: " + ", ".join(f"{k} {v}" for k, v in report.seconds.items()))
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)} records:")
        for k in report.skipped[:20]:
            typer.echo(f"  {k['file']} [{k['record']}]: {k['reason']}")
        if len(report.skipped) > 20:
            typer.echo(f"  … {len(report.skipped) - 20} more in {s.home / 'ingest_report.json'}")


def _history(path: Path | None) -> list:
    from rag.answer.schema import Turn

    if path is None:
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Turn.model_validate(x) for x in data]


def render_text(ans) -> str:
    """Readable text for a terminal: answer, facts with [C#] markers, interactions, citations, disclaimer."""
    lines = [f"[{ans.status}] {ans.answer}"]
    for it in ans.interactions:
        lines.append(f"  ! {' + '.join(it.drugs)}: {it.severity.upper()} — {it.text} [{', '.join(it.citations)}]")
    for f in ans.facts:
        lines.append(f"  • ({f.type}) {f.text} [{', '.join(f.citations)}]")
    if ans.citations:
        lines.append("Sources:")
        for c in ans.citations:
            where = f"{c.section_name or c.section} [{c.start}:{c.end}]"
            lines.append(f"  [{c.id}] {c.source}: {c.title} — {c.doc_id} — {where}")
    for q in ans.follow_up_questions:
        lines.append(f"  ? {q}")
    lines.append(ans.disclaimer)
    return "\n".join(lines)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="the question, in Chinese or English")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the structured answer")] = False,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="JSONL questions (evaluation format): one answer a line")
    ] = None,
    history: Annotated[
        Path | None, typer.Option("--history", help="JSON list of earlier turns {role, content}")
    ] = None,
) -> None:
    """Answer a drug question from the knowledge base, citing label text and graph edges."""
    from rag.evaluation import read_questions
    from rag.service import DrugService

    svc = DrugService()
    try:
        if batch is not None:
            for q in read_questions(batch):
                try:
                    ans = svc.ask(q["question"])
                    row = {"id": q.get("id"), **json.loads(ans.model_dump_json())}
                except DrugRagError as e:
                    row = {"id": q.get("id"), "error": type(e).__name__, "detail": str(e)}
                typer.echo(json.dumps(row, ensure_ascii=False))
            return
        if not question:
            _fail(ValueError("give a question, or --batch FILE"))
        ans = svc.ask(question or "", _history(history))
        typer.echo(ans.model_dump_json(indent=1) if as_json else render_text(ans))
    except DrugRagError as e:
        _fail(e)
    finally:
        svc.close()


@app.command("eval")
def eval_cmd(
    files: Annotated[list[Path], typer.Argument(help="evaluation JSONL files")],
    limit: Annotated[int | None, typer.Option(help="first N questions of each file")] = None,
) -> None:
    """Evaluate on JSONL question files; prints one JSON object of metrics per question kind."""
    from rag.evaluation import evaluate, read_questions
    from rag.service import DrugService

    svc = DrugService()
    try:
        svc.warm_up()
        qs = []
        for f in files:
            qs += read_questions(f)[:limit] if limit else read_questions(f)
        res = evaluate(svc, qs, progress=sys.stderr.isatty())
    except DrugRagError as e:
        _fail(e)
    finally:
        svc.close()
    typer.echo(json.dumps(res, ensure_ascii=False))


AllowOpen = Annotated[bool, typer.Option("--allow-unauthenticated",
                                          help="serve beyond loopback without API keys (on purpose)")]


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, allow_unauthenticated: AllowOpen = False) -> None:
    """Serve the JSON API and its OpenAI-compatible facade (FastAPI) on HOST:PORT (loopback unless told)."""
    import uvicorn

    from rag.apps.api import create_app

    _check_bind(host, allow_unauthenticated)
    try:
        application = create_app()
    except DrugRagError as e:
        _fail(e)
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False, log_config=None)


@app.command()
def mcp(
    transport: Annotated[str, typer.Option(help="stdio (a local agent) or http (streamable HTTP at /mcp)")] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_unauthenticated: AllowOpen = False,
) -> None:
    """Serve the MCP tools ask, check_interactions, get_label_section, search_entities."""
    from rag.apps import mcp_server
    from rag.service import DrugService

    if transport not in ("stdio", "http"):
        _fail(ValueError(f"unknown transport {transport!r}: use stdio or http"))
    svc = DrugService()
    try:
        if transport == "stdio":
            mcp_server.serve_stdio(svc)
        else:
            s = _check_bind(host, allow_unauthenticated)
            mcp_server.serve_http(svc, s, host, port)
    except DrugRagError as e:
        _fail(e)
    finally:
        svc.close()


@app.command()
def ui(host: str = "127.0.0.1", port: int = 8501) -> None:
    """Start the Streamlit app (bound to 127.0.0.1 unless --host says otherwise)."""
    app_path = PROJECT_ROOT / "ui" / "app.py"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    raise typer.Exit(subprocess.call(cmd))


if __name__ == "__main__":
    app()
