"""Interaction checker: pick 2–10 drugs → pairwise matrix of recorded severities, each pair with its sources."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import streamlit as st

from rag.answer.schema import Answer, Citation, Interaction
from ui.components import (
    NO_RECORD,
    SEVERITY,
    SEVERITY_RANK,
    cite_html,
    client_or_stop,
    esc,
    html_block,
    safe,
    severity_html,
    status_badge,
)

SELECTED = "ix_selected"
RESULT = "ix_result"

st.title("Interaction checker")
st.caption("Pairwise drug–drug interactions recorded in the knowledge graph (DDInter) and in label text. "
           f"A pair without a record means: {NO_RECORD}.")
client = client_or_stop()

query = st.text_input("Search drugs", key="ix_query", placeholder="Type a drug name (English or 中文), e.g. warfarin",
                      help="Matches drug names in the knowledge base; results become options of the box below.")
found: list[dict[str, Any]] = []
if query.strip():
    found = safe(client.search, query.strip(), 40, ["Drug"]) or []
    if not found:
        st.caption(f"No drug in the knowledge base matches “{query.strip()}”.")
# keyed widget: its identity (and selection) survives the options changing with every search
options = list(dict.fromkeys([*st.session_state.get(SELECTED, []), *(n["name"] for n in found)]))
selected: list[str] = st.multiselect(
    "Drugs to check", options, key=SELECTED, max_selections=10, accept_new_options=True,
    placeholder="Type to filter the options, or type a drug name and press Enter",
    help="2 to 10 drugs. Names are matched against the knowledge base when you check.")

if st.button("Check interactions", type="primary", disabled=len(selected) < 2, icon=":material/search:"):
    ans = safe(client.interactions, selected)
    st.session_state[RESULT] = (list(selected), ans) if ans is not None else None

result: tuple[list[str], Answer] | None = st.session_state.get(RESULT)
if len(selected) < 2:
    st.info("Choose at least two drugs.", icon=":material/info:")


def _aliases(drugs: list[str], ans: Answer) -> dict[str, set[str]]:
    """Selected name → every spelling the answer may use for it (the linked node's name and id)."""
    out = {d: {d.lower()} for d in drugs}
    for lk in ans.metadata.linked:
        for d in drugs:
            if lk.matched.lower() == d.lower():
                out[d] |= {lk.name.lower(), lk.id.lower()}
    return out


def _pair_of(it: Interaction, alias: dict[str, set[str]]) -> tuple[str, str] | None:
    hits = [d for d in alias if any(x.lower() in alias[d] for x in it.drugs)]
    return (hits[0], hits[1]) if len(hits) >= 2 else None


def _cited_html(ids: list[str], cites: dict[str, Citation]) -> str:
    rows = []
    for cid in ids:
        c = cites.get(cid)
        if c is None:
            continue
        kind = "graph edge" if c.source == "graph" else f"label · {esc(c.title)} · {esc(c.section_name or c.section)}"
        rows.append(f'<li><span class="dr-cite">[{esc(c.id)}]</span> <span class="dr-type">{kind}</span>'
                    f'<mark>{esc(c.quote)}</mark></li>')
    return f'<ul class="dr-list">{"".join(rows)}</ul>' if rows else ""


if result is not None and result[0] == selected:
    drugs, ans = result
    alias = _aliases(drugs, ans)
    cites = {c.id: c for c in ans.citations}
    by_pair: dict[frozenset[str], list[Interaction]] = {}
    for it in ans.interactions:
        pair = _pair_of(it, alias)
        if pair:
            by_pair.setdefault(frozenset(pair), []).append(it)

    def worst(pair: frozenset[str]) -> str | None:
        its = by_pair.get(pair)
        return max((i.severity for i in its), key=lambda s: SEVERITY_RANK.get(s, 0)) if its else None

    status_badge(ans.status)
    st.subheader("Severity matrix")
    head = "".join(f"<th>{esc(d)}</th>" for d in drugs)
    rows = []
    for a in drugs:
        cells = []
        for b in drugs:
            if a == b:
                cells.append('<td class="dr-diag">—</td>')
                continue
            sev = worst(frozenset((a, b)))
            cells.append(f"<td>{severity_html(sev)}</td>" if sev else
                         '<td class="dr-none" title="' + NO_RECORD + '">No record</td>')
        rows.append(f"<tr><th>{esc(a)}</th>{''.join(cells)}</tr>")
    html_block(f'<table class="dr-matrix"><tr><th></th>{head}</tr>{"".join(rows)}</table>')
    legend = " ".join(severity_html(k) for k in SEVERITY)
    html_block(f"{legend} <i>No record</i> = {esc(NO_RECORD)}.")

    st.subheader("Pairs and their sources")
    pairs = sorted(combinations(drugs, 2), key=lambda p: -SEVERITY_RANK.get(worst(frozenset(p)) or "", -1))
    label_facts = [f for f in ans.facts if any(cites.get(c) and cites[c].source == "label" for c in f.citations)]
    for a, b in pairs:
        key = frozenset((a, b))
        sev = worst(key)
        title = f"{a} + {b} — {SEVERITY[sev][0] if sev else 'no interaction recorded'}"
        with st.expander(title, expanded=sev == "major", icon=":material/warning:" if sev == "major" else None):
            if not sev:
                st.info(f"{NO_RECORD}. Ask a pharmacist before combining these medicines.", icon=":material/info:")
            for it in by_pair.get(key, []):
                html_block(f"{severity_html(it.severity)}{esc(it.text)}{cite_html(it.citations)}"
                           + _cited_html(it.citations, cites))
            mentions = [
                f
                for f in label_facts
                if all(
                    any(
                        x in (f.text + " " + " ".join(cites[c].title for c in f.citations if c in cites)).lower()
                        for x in alias[d]
                    )
                    for d in (a, b)
                )
            ]
            if mentions:
                st.markdown("**Label text on this pair**")
                for f in mentions:
                    html_block(f"{esc(f.text)}{cite_html(f.citations)}" + _cited_html(f.citations, cites))
    if label_facts:
        with st.expander("All label text retrieved for these drugs", icon=":material/description:"):
            for f in label_facts:
                html_block(
                    f'<span class="dr-type">{esc(f.type)}</span>{esc(f.text)}{cite_html(f.citations)}'
                    + _cited_html(f.citations, cites)
                )
    st.caption(f"⚠️ {ans.disclaimer}")
    with st.expander("JSON", icon=":material/data_object:"):
        st.json(ans.model_dump(mode="json"), expanded=1)
elif result is not None:
    st.caption("The selection changed — press “Check interactions” again.")
