"""Shared UI pieces: the cached client, error-safe calls, badges, the answer card and the source viewer."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st
from pydantic import ValidationError

from rag.answer.schema import Answer, Citation
from rag.core import errors
from ui.client import Client, make_client

log = logging.getLogger("drugrag.ui")
T = TypeVar("T")

SEVERITY: dict[str, tuple[str, str, str]] = {  # severity → (label, background, text colour)
    "major": ("Major", "#d32f2f", "#ffffff"),
    "moderate": ("Moderate", "#ef6c00", "#ffffff"),
    "minor": ("Minor", "#fbc02d", "#1f1f1f"),
    "unknown": ("Unknown", "#9e9e9e", "#ffffff"),
}
SEVERITY_RANK = {"major": 3, "moderate": 2, "minor": 1, "unknown": 0}
STATUS: dict[str, tuple[str, str, str]] = {  # status → (label, background, text colour)
    "answered": ("Answered", "#e6f4ea", "#1e7e34"),
    "insufficient_evidence": ("Insufficient evidence", "#fff3e0", "#b45309"),
    "needs_clarification": ("Needs clarification", "#e3f2fd", "#1565c0"),
    "refused": ("Refused", "#fdecea", "#c62828"),
}
NO_RECORD = "No interaction recorded in the knowledge base — not proof of safety"

CSS = """
<style>
.dr-sev {display:inline-block; padding:0.05rem 0.5rem; border-radius:0.6rem; font-size:0.8rem; font-weight:600;
         margin-right:0.35rem; white-space:nowrap;}
.dr-status {display:inline-block; padding:0.1rem 0.6rem; border-radius:0.5rem; font-size:0.85rem; font-weight:600;}
.dr-cite {font-size:0.78rem; font-weight:600; color:#1565c0; margin-left:0.15rem; white-space:nowrap;}
.dr-type {font-size:0.75rem; color:#555; background:#eef1f5; border-radius:0.4rem; padding:0.02rem 0.35rem;
          margin-right:0.3rem;}
.dr-plain {white-space:pre-wrap; overflow-wrap:anywhere;}
.dr-src {white-space:pre-wrap; overflow-wrap:anywhere; font-size:0.9rem; line-height:1.5; max-height:26rem;
         overflow-y:auto; border:1px solid #e0e0e0; border-radius:0.4rem; padding:0.6rem 0.8rem; background:#fafafa;}
.dr-src mark {background:#ffe066; padding:0.05rem 0;}
ul.dr-list {margin:0.2rem 0 0.6rem 0; padding-left:1.2rem;}
ul.dr-list li {margin-bottom:0.35rem;}
table.dr-matrix {border-collapse:collapse; margin:0.4rem 0 0.8rem 0;}
table.dr-matrix th, table.dr-matrix td {border:1px solid #ddd; padding:0.35rem 0.6rem; text-align:center;
                                        font-size:0.88rem;}
table.dr-matrix th {background:#f4f6f8;}
td.dr-none {color:#777; font-style:italic; background:#fbfbfb;}
td.dr-diag {background:#eee; color:#aaa;}
</style>
"""


# -- client and errors -------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Opening the knowledge base…")
def get_client() -> Client:
    """One client per Streamlit process: in-process it holds the single DrugService (embedded stores allow one
    process each), over HTTP one connection pool."""
    client = make_client()
    service = getattr(client, "service", None)
    if service is not None:  # open the stores and load the embedding model while the user types
        threading.Thread(target=_warm_up, args=(service,), name="drugrag-warm-up", daemon=True).start()
    return client


def _warm_up(service: Any) -> None:
    try:
        service.warm_up()
    except Exception as e:  # noqa: BLE001 - the first real call reports the problem to the user
        log.warning("warm-up failed: %s", e)


def readable_error(e: BaseException) -> str:
    """A one-line message for people; the traceback goes to the server log only."""
    msg = " ".join(str(e).split())[:600]
    if isinstance(e, errors.InvalidInput):
        return f"Invalid input: {msg}"
    if isinstance(e, errors.NotFound):
        return f"Not found: {msg}"
    if isinstance(e, errors.StoreUnavailable):
        return f"The knowledge base is unavailable: {msg}"
    if isinstance(e, errors.ModelUnavailable):
        return f"A model is unavailable: {msg}"
    if isinstance(e, errors.DrugRagError):
        return msg or type(e).__name__
    if isinstance(e, ValidationError):
        return "The service sent data this page cannot read (schema mismatch); see the server log."
    return f"Unexpected error ({type(e).__name__}): {msg or 'no details'}. Details are in the server log."


def call(fn: Callable[..., T], *args: Any, **kw: Any) -> tuple[T | None, str | None]:
    """(result, None) or (None, readable message); never raises an ordinary exception."""
    try:
        return fn(*args, **kw), None
    except Exception as e:
        if isinstance(e, errors.DrugRagError):  # expected failures: one line in the server log
            log.warning("%s: %s", type(e).__name__, e)
        else:  # a bug: the traceback goes to the server log, never to the page
            log.exception("UI call %s failed", getattr(fn, "__name__", fn))
        return None, readable_error(e)


def safe(fn: Callable[..., T], *args: Any, **kw: Any) -> T | None:
    """Call and show a failure as st.error; returns None on failure."""
    res, err = call(fn, *args, **kw)
    if err:
        st.error(err, icon=":material/error:")
    return res


def client_or_stop() -> Client:
    c, err = call(get_client)
    if c is None:
        st.error(err or "The knowledge base could not be opened.", icon=":material/error:")
        st.stop()
    return c


def inject_css() -> None:
    st.html(CSS)


# -- small renderers ---------------------------------------------------------------------------------------------
def esc(text: Any) -> str:
    """HTML-escape text for st.markdown(unsafe_allow_html=True) so Markdown, LaTeX and HTML in it stay literal.

    Newlines become character references: the Markdown parser then sees one line (a blank line would end the
    HTML block) while the browser still renders the line breaks (white-space: pre-wrap)."""
    s = html.escape(str(text), quote=True)
    return s.replace("$", "&#36;").replace("\r", "").replace("\n", "&#10;").replace("*", "&#42;").replace("_", "&#95;")


def severity_html(sev: str | None) -> str:
    label, bg, fg = SEVERITY.get((sev or "unknown").lower(), SEVERITY["unknown"])
    cls = html.escape((sev or "unknown").lower())
    return f'<span class="dr-sev dr-sev-{cls}" style="background:{bg};color:{fg}">{label}</span>'


def cite_html(ids: list[str]) -> str:
    return "".join(f'<span class="dr-cite">[{esc(i)}]</span>' for i in ids)


def html_block(inner: str) -> None:
    st.markdown(f'<div class="dr-block">{inner}</div>', unsafe_allow_html=True)


def plain(text: str) -> None:
    """Show user or source text literally (no Markdown interpretation)."""
    st.markdown(f'<div class="dr-plain">{esc(text)}</div>', unsafe_allow_html=True)


def status_html(status: str) -> str:
    label, bg, fg = STATUS.get(status, (status, "#eeeeee", "#333333"))
    return f'<span class="dr-status dr-status-{esc(status)}" style="background:{bg};color:{fg}">{esc(label)}</span>'


def status_badge(status: str) -> None:
    st.markdown(status_html(status), unsafe_allow_html=True)


# -- the source viewer ---------------------------------------------------------------------------------------------
def find_cited_section(label: dict[str, Any], c: Citation) -> tuple[dict[str, Any], int, int] | None:
    """The stored section a citation quotes, and the span: exact key+offsets first, then the quote's position."""
    sections = label.get("sections") or []
    for s in sections:
        if s.get("key") == c.section and s.get("text", "")[c.start : c.end] == c.quote:
            return s, c.start, c.end
    for same_key in (True, False):
        for s in sections:
            if same_key and s.get("key") != c.section:
                continue
            i = s.get("text", "").find(c.quote) if c.quote else -1
            if i >= 0:
                return s, i, i + len(c.quote)
    return None


def highlight_html(text: str, start: int, end: int, context: int | None = None) -> str:
    """The section text, HTML-escaped, with [start, end) in <mark>; `context` clips to that many characters around."""
    pre, mid, post = text[:start], text[start:end], text[end:]
    lead = trail = ""
    if context is not None:
        if len(pre) > context:
            pre, lead = pre[-context:], "…"
        if len(post) > context:
            post, trail = post[:context], "…"
    return f'<div class="dr-src">{lead}{esc(pre)}<mark>{esc(mid)}</mark>{esc(post)}{trail}</div>'


def render_source(c: Citation, client: Client) -> None:
    """The cited label section with the quoted span highlighted, or the cited graph edge."""
    if c.source == "graph":
        st.markdown(f"**Knowledge-graph edge** · `{esc(c.section or '')}`")
        st.markdown(f'<div class="dr-src"><mark>{esc(c.quote)}</mark></div>', unsafe_allow_html=True)
        st.caption(f"Edge id: {c.doc_id} · source: {c.title}")
        return
    label = safe(client.label, c.doc_id)
    if label is None:
        return
    st.markdown(f"#### {esc(label.get('title') or c.title)}", unsafe_allow_html=True)
    meta = [
        f"Label id: `{label.get('label_id', c.doc_id)}`",
        f"version {label.get('version') or c.version or 'not stated'}",
        f"effective date {label.get('effective_date') or 'not stated'}",
    ]
    for k in ("language", "source"):
        if label.get(k):
            meta.append(f"{k} {label[k]}")
    st.caption(" · ".join(meta))
    found = find_cited_section(label, c)
    if found is None:
        st.warning(
            "The quoted span was not found in the stored label (it may have been re-ingested since). "
            "The quote as cited:"
        )
        st.markdown(f'<div class="dr-src"><mark>{esc(c.quote)}</mark></div>', unsafe_allow_html=True)
        return
    sec, start, end = found
    name = sec.get("name") or c.section_name or sec.get("key")
    st.markdown(
        f"**Section:** {esc(name)} <span class='dr-type'>{esc(sec.get('key'))}</span> · "
        f"characters {start}–{end} of {len(sec['text'])}",
        unsafe_allow_html=True,
    )
    text = sec["text"]
    whole = len(text) <= 4000 or st.toggle("Show the whole section", key=f"whole-{c.doc_id}-{start}-{end}")
    st.markdown(highlight_html(text, start, end, None if whole else 1500), unsafe_allow_html=True)
    if source_file := label.get("source_file"):
        st.caption(f"Source file: {source_file}")


@st.dialog("Source", width="large")
def source_dialog(citation: dict[str, Any]) -> None:
    c = Citation.model_validate(citation)
    st.caption(f"[{c.id}] {c.source} citation")
    render_source(c, client_or_stop())


def citation_row(c: Citation, key: str) -> None:
    """One line of the source list: a button that opens the viewer, then what the citation points at."""
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    if row.button(f"Source {c.id}", key=f"{key}-{c.id}", help="Open the cited text with the quote highlighted"):
        source_dialog(c.model_dump())
    if c.source == "label":
        what = f'<span class="dr-type">label</span><b>{esc(c.title)}</b> · {esc(c.section_name or c.section or "")}'
    else:
        quote = c.quote if len(c.quote) <= 140 else c.quote[:140] + "…"
        what = f'<span class="dr-type">graph edge</span>{esc(quote)} · <i>{esc(c.title)}</i>'
    row.markdown(f'<span class="dr-cite">[{esc(c.id)}]</span> {what}', unsafe_allow_html=True, width="stretch")


# -- the answer card -----------------------------------------------------------------------------------------------
def render_answer(ans: Answer, key: str, on_follow_up: Callable[[str], None] | None = None) -> None:
    head, meta = st.columns([2, 5], vertical_alignment="center")
    with head:
        status_badge(ans.status)
    bits = [ans.metadata.generator]
    if ans.metadata.latency_ms is not None:
        bits.append(f"{ans.metadata.latency_ms / 1000:.1f} s")
    if ans.metadata.linked:
        linked: dict[str, str] = {}
        for x in ans.metadata.linked:
            linked.setdefault(f"{x.name} ({x.type})".casefold(), f"{x.name} ({x.type})")
        bits.append("linked: " + ", ".join(list(linked.values())[:6]))
    meta.caption(" · ".join(bits))
    plain(ans.answer)
    if ans.interactions:
        st.markdown("**Interactions**")
        items = "".join(
            f"<li>{severity_html(i.severity)}<b>{esc(' + '.join(i.drugs))}</b>: {esc(i.text)}"
            f"{cite_html(i.citations)}</li>"
            for i in ans.interactions
        )
        html_block(f'<ul class="dr-list">{items}</ul>')
    if ans.facts:
        st.markdown("**Facts**")
        items = "".join(
            f'<li><span class="dr-type">{esc(f.type)}</span>{esc(f.text)}{cite_html(f.citations)}</li>'
            for f in ans.facts
        )
        html_block(f'<ul class="dr-list">{items}</ul>')
    if ans.citations:
        st.markdown("**Sources**")
        for c in ans.citations:
            citation_row(c, key=f"{key}-src")
    if ans.follow_up_questions and on_follow_up is not None:
        st.markdown("**Follow-up questions**")
        for j, q in enumerate(ans.follow_up_questions):
            st.button(
                q, key=f"{key}-fu-{j}", on_click=on_follow_up, args=(q,), icon=":material/subdirectory_arrow_right:"
            )
    st.caption(f"⚠️ {ans.disclaimer}")
