"""Knowledge base: what was ingested — sources, labels by language and section, graph counts, skipped records."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui.components import client_or_stop, safe


def _table(d: dict[str, Any] | None, key: str, value: str) -> pd.DataFrame:
    rows = sorted((d or {}).items(), key=lambda kv: -kv[1] if isinstance(kv[1], int | float) else 0)
    return pd.DataFrame(rows, columns=[key, value])


def _height(rows: int) -> int:
    return 35 * (min(rows, 20) + 1) + 3


def _sources(sources: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for name, info in sources.items():
        row = {"source": name}
        if isinstance(info, dict):
            row |= {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in info.items()}
        else:
            row["value"] = info
        rows.append(row)
    return pd.DataFrame(rows)


st.title("Knowledge base")
client = client_or_stop()
with st.spinner("Reading the knowledge base…"):
    stats = safe(client.kb_stats)
if stats is None:
    st.stop()

report: dict[str, Any] = stats.get("ingest_report") or {}
graph = stats.get("graph") or {}
nodes, edges = graph.get("nodes") or {}, graph.get("edges") or {}
m = st.columns(5)
m[0].metric("Labels", f"{stats.get('labels', 0):,}")
m[1].metric("Chunks", f"{stats.get('chunks', 0):,}")
m[2].metric("Graph nodes", f"{sum(nodes.values()):,}")
m[3].metric("Graph edges", f"{sum(edges.values()):,}")
m[4].metric("Skipped records", f"{len(report.get('skipped') or []):,}")
if report.get("finished_at"):
    st.caption(f"Last ingest finished at **{report['finished_at']}**"
               + (f" in {report['seconds']['total']:.0f} s" if (report.get("seconds") or {}).get("total") else ""))
else:
    st.warning("No ingest report found — run `drugrag ingest` to build the knowledge base.", icon=":material/warning:")

if report.get("sources"):
    st.subheader("Sources")
    st.dataframe(_sources(report["sources"]), hide_index=True, width="stretch")

st.subheader("Labels")
a, b = st.columns([1, 2])
with a:
    st.markdown("**By language**")
    st.dataframe(_table(report.get("labels_by_language"), "language", "labels"), hide_index=True, width="stretch")
with b:
    st.markdown("**Sections by key**")
    secs = _table(report.get("sections_by_key"), "section", "sections")
    if len(secs):
        st.bar_chart(secs, x="section", y="sections", horizontal=True, height=max(200, 26 * len(secs)))

st.subheader("Graph")
a, b = st.columns(2)
with a:
    st.markdown("**Nodes by type**")
    st.dataframe(_table(nodes, "type", "nodes"), hide_index=True, width="stretch", height=_height(len(nodes)))
with b:
    st.markdown("**Edges by type**")
    st.dataframe(_table(edges, "type", "edges"), hide_index=True, width="stretch", height=_height(len(edges)))

st.subheader("Skipped records")
skipped = report.get("skipped") or []
if skipped:
    st.dataframe(pd.DataFrame(skipped, columns=["file", "record", "reason"]), hide_index=True, width="stretch")
else:
    st.success("No record was skipped in the last ingest.", icon=":material/check:")

with st.expander("Ingest report (JSON)", icon=":material/data_object:"):
    st.json(report or {}, expanded=1)
