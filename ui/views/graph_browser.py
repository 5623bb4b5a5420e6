"""Knowledge-graph browser: search an entity, draw its bounded neighbourhood, expand nodes, inspect one."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st
from st_link_analysis import EdgeStyle, Event, NodeStyle, st_link_analysis

from graph.store import EDGE_TYPES, NODE_TYPES
from ui.components import SEVERITY, call, client_or_stop, esc, get_client, plain, safe, severity_html

MAX_NODES = 400  # never draw more than this many nodes, however many expansions
COLORS = {"Drug": "#1e88e5", "Disease": "#e53935", "Symptom": "#fb8c00", "Check": "#8e24aa", "Food": "#43a047",
          "Department": "#6d4c41", "Cure": "#00897b", "Producer": "#757575", "Label": "#3949ab"}
ICONS = {"Drug": "medical_services", "Label": "description", "Producer": "factory", "Check": "science"}
VIEW, CENTER, PICK, SELECTED, ERROR, DRUGS = "kg_view", "kg_center", "kg_pick", "kg_selected", "kg_error", "kg_drugs"
REV = "kg_rev"  # bumped whenever the drawn elements change: a fresh component instance lays the graph out anew


class _NodeStyle(NodeStyle):
    """NodeStyle with readable captions (the component's default only shows them when zoomed far in)."""

    def dump(self) -> dict[str, Any]:
        d = super().dump()
        d["style"].update({"font-size": 7, "min-zoomed-font-size": 5, "text-wrap": "ellipsis", "text-max-width": 90})
        return d


def edge_label(e: dict[str, Any]) -> str:
    """Interaction edges carry their level in the label, so they can be coloured like the severity badges."""
    level = str(e["props"].get("level") or "").capitalize()
    return f"INTERACTS_WITH {level}" if e["type"] == "INTERACTS_WITH" and level else e["type"]


def nkey(node_type: str, node_id: str) -> str:
    return f"{node_type}:{node_id}"


def _merge(view: dict[str, Any], nb: dict[str, Any]) -> int:
    """Add a neighbourhood's nodes and edges to the view (bounded by MAX_NODES); returns how many nodes were new."""
    new = 0
    for n in nb["nodes"]:
        k = nkey(n["type"], n["id"])
        if k not in view["nodes"]:
            if len(view["nodes"]) >= MAX_NODES:
                view["capped"] = True
                continue
            view["nodes"][k] = n
            new += 1
    for e in nb["edges"]:
        if nkey(e["src_type"], e["src"]) in view["nodes"] and nkey(e["dst_type"], e["dst"]) in view["nodes"]:
            view["edges"].setdefault(e["id"], e)
    view["truncated"] = view["truncated"] or bool(nb.get("truncated"))
    st.session_state[REV] = st.session_state.get(REV, 0) + 1
    return new


def _load(center: dict[str, str], depth: int, types: list[str], limit: int) -> dict[str, Any] | None:
    nb = safe(get_client().neighbourhood, center["id"], center["type"], depth, types or None, limit)
    if nb is None:
        return None
    view = {"key": (center["type"], center["id"], depth, tuple(types), limit), "nodes": {}, "edges": {},
            "truncated": False, "capped": False, "limit": limit, "expanded": [nkey(center["type"], center["id"])]}
    _merge(view, nb)
    return view


def _expand(k: str) -> None:
    """Merge the 1-hop neighbourhood of node k (same relation filter and limit) into the current view."""
    view = st.session_state.get(VIEW)
    if not view or k not in view["nodes"]:
        return
    n = view["nodes"][k]
    types = list(view["key"][3])
    nb, err = call(get_client().neighbourhood, n["id"], n["type"], 1, types or None, view["limit"])
    if err or nb is None:
        st.session_state[ERROR] = err
        return
    added = _merge(view, nb)
    view["expanded"].append(k)
    st.session_state[SELECTED] = k
    st.session_state[ERROR] = None if added or not view["capped"] else f"Node cap of {MAX_NODES} reached; not expanded."


def _recentre(k: str) -> None:
    view = st.session_state.get(VIEW)
    if view and k in view["nodes"]:
        n = view["nodes"][k]
        st.session_state[CENTER] = {"id": n["id"], "type": n["type"], "name": n["name"]}
        st.session_state[SELECTED] = k


def _on_graph_event(key: str) -> None:
    ev = st.session_state.get(key) or {}
    data = ev.get("data") or {}
    if ev.get("action") == "expand" and data.get("node_ids"):
        _expand(data["node_ids"][0])
    elif ev.get("action") == "select_node" and data.get("target_id"):
        st.session_state[SELECTED] = data["target_id"]


def _elements(view: dict[str, Any]) -> dict[str, Any]:
    nodes = [{"data": {"id": k, "label": n["type"], "name": (n["name"] or n["id"])[:40], "node_id": n["id"]}}
             for k, n in view["nodes"].items()]
    edges = []
    for e in view["edges"].values():
        d = {"id": e["id"], "label": edge_label(e), "source": nkey(e["src_type"], e["src"]),
             "target": nkey(e["dst_type"], e["dst"])}
        if e["props"].get("level"):
            d["level"] = e["props"]["level"]
        edges.append({"data": d})
    return {"nodes": nodes, "edges": edges}


def _props_table(props: dict[str, Any]) -> pd.DataFrame:
    rows = [{"property": k, "value": ", ".join(map(str, v)) if isinstance(v, list) else str(v)}
            for k, v in sorted(props.items())]
    return pd.DataFrame(rows, columns=["property", "value"])


def _edges_table(view: dict[str, Any], k: str) -> pd.DataFrame:
    rows = []
    for e in view["edges"].values():
        s, d = nkey(e["src_type"], e["src"]), nkey(e["dst_type"], e["dst"])
        if k not in (s, d):
            continue
        out = s == k
        other = f"{e['dst_name']} ({e['dst_type']})" if out else f"{e['src_name']} ({e['src_type']})"
        rows.append(
            {
                "relation": e["type"],
                "direction": "—" if e["type"] == "INTERACTS_WITH" else "→" if out else "←",
                "node": other,
                "level": e["props"].get("level", ""),
                "source": e["props"].get("source", ""),
            }
        )
    return pd.DataFrame(rows, columns=["relation", "direction", "node", "level", "source"])


def _drug_panel(drug_id: str) -> None:
    cache: dict[str, Any] = st.session_state.setdefault(DRUGS, {})
    if drug_id not in cache:
        info = safe(get_client().drug, drug_id)
        if info is None:
            return
        cache[drug_id] = info
    info = cache[drug_id]
    labels = info.get("labels") or []
    st.markdown(f"**Labels** ({len(labels)})")
    if not labels:
        st.caption("No label for this drug in the knowledge base (graph facts only).")
    for lab in labels[:5]:
        meta = " · ".join(
            str(x)
            for x in (
                lab.get("label_id"),
                lab.get("language"),
                lab.get("source"),
                lab.get("version"),
                lab.get("effective_date"),
            )
            if x
        )
        st.markdown(f"*{esc(lab.get('title') or lab.get('label_id'))}*", unsafe_allow_html=True)
        st.caption(meta)
        secs = lab.get("sections") or []
        if secs:
            names = [f"{sec.get('name') or sec['key']} ({sec['key']})" for sec in secs]
            i = (
                st.selectbox(
                    "Label section",
                    list(range(len(secs))),
                    key=f"kg-sec-{lab.get('label_id')}",
                    format_func=names.__getitem__,
                )
                or 0
            )
            text = secs[i]["text"]
            with st.container(height=220):
                plain(text if len(text) <= 4000 else text[:4000] + " …")
    ix = info.get("interactions") or []
    if ix:
        st.markdown(f"**Recorded interactions** (most severe first, {len(ix)} shown)")
        items = []
        for e in ix[:12]:
            other = e["dst_name"] if e["src"] == drug_id else e["src_name"]
            items.append(f"<li>{severity_html(str(e['props'].get('level', 'unknown')).lower())}{esc(other)}</li>")
        st.markdown(f'<ul class="dr-list">{"".join(items)}</ul>', unsafe_allow_html=True)


# -- page ---------------------------------------------------------------------------------------------------------
st.title("Knowledge graph")
st.caption(
    "Search a drug, disease or symptom (English or 中文), then browse its neighbourhood. Click a node to "
    "inspect it; the graph's expand button (or “Expand” on the right) merges its neighbours into the view."
)
client_or_stop()

c1, c2 = st.columns([3, 2])
query = c1.text_input("Search entity", key="kg_query", placeholder="e.g. warfarin, 高血压, headache")
search_types = c2.multiselect("Entity types", list(NODE_TYPES), default=["Drug", "Disease", "Symptom"], key="kg_types")
if query.strip():
    results = safe(get_client().search, query.strip(), 25, search_types or None) or []
    if results:
        pick = st.selectbox(
            "Entity",
            results,
            key=None,
            format_func=lambda n: (
                f"{n['name']} · {n['type']}" + (" · has label" if n.get("has_label") else "") + f" · id {n['id']}"
            ),
        )
        pk = (pick["type"], pick["id"])
        if st.session_state.get(PICK) != pk:
            st.session_state[PICK] = pk
            st.session_state[CENTER] = {"id": pick["id"], "type": pick["type"], "name": pick["name"]}
            st.session_state[SELECTED] = nkey(*pk)
    else:
        st.info(f"No entity matches “{query.strip()}”.", icon=":material/search_off:")

d1, d2, d3 = st.columns([1, 1, 3])
depth = d1.select_slider("Depth", options=[1, 2, 3], value=1, key="kg_depth")
limit = d2.select_slider("Edge limit", options=[25, 50, 100, 200, 300, 500], value=50, key="kg_limit")
rel_types = d3.multiselect(
    "Relation types", list(EDGE_TYPES), default=[], key="kg_rel", placeholder="All relation types"
)

center = st.session_state.get(CENTER)
if center is None:
    st.info("Search for an entity to draw its neighbourhood.", icon=":material/hub:")
    st.stop()

want = (center["type"], center["id"], depth, tuple(rel_types), limit)
view = st.session_state.get(VIEW)
if not view or view["key"] != want:
    with st.spinner("Loading the neighbourhood…"):
        view = _load(center, depth, rel_types, limit)
    st.session_state[VIEW] = view
    st.session_state[ERROR] = None
if view is None:
    st.stop()
assert view is not None  # st.stop() ends the script run
if err := st.session_state.get(ERROR):
    st.error(err, icon=":material/error:")

n_nodes, n_edges = len(view["nodes"]), len(view["edges"])
left, right = st.columns([3, 2])
with left:
    st.markdown(
        f"**{esc(center['name'])}** · {center['type']} — showing {n_nodes} nodes and {n_edges} edges",
        unsafe_allow_html=True,
    )
    if view["truncated"]:
        st.info(
            f"Showing {n_edges} of more than {n_edges} edges — truncated at the limit of {view['limit']} per "
            "query. Filter relation types or raise the limit to see others.",
            icon=":material/content_cut:",
        )
    if view["capped"]:
        st.warning(f"Node cap of {MAX_NODES} reached: further expansions are not drawn.")
    counts = Counter(n["type"] for n in view["nodes"].values())
    legend = " ".join(
        f'<span class="dr-sev" style="background:{COLORS.get(t, "#999")};color:#fff">{t} {c}</span>'
        for t, c in counts.most_common()
    )
    st.markdown(legend, unsafe_allow_html=True)
    present = sorted({n["type"] for n in view["nodes"].values()})
    node_styles = [_NodeStyle(t, COLORS.get(t, "#999999"), "name", ICONS.get(t)) for t in present]
    edge_styles = [
        EdgeStyle(
            lb,
            SEVERITY.get(lb.split(" ")[-1].lower(), ("", "#9e9e9e"))[1],
            caption="label",
            directed=not lb.startswith("INTERACTS_WITH"),
            labeled=None,
        )  # its default False warns "deprecated" anyway
        for lb in sorted({edge_label(e) for e in view["edges"].values()})
    ]
    graph_key = f"kg_graph_{st.session_state.get(REV, 0)}"
    st_link_analysis(
        _elements(view),
        layout="cose",
        node_styles=node_styles,
        edge_styles=edge_styles,
        height=560,
        key=graph_key,
        node_actions=["expand"],
        events=[Event("select_node", "tap", "node")],
        on_change=partial(_on_graph_event, graph_key),
    )

with right:
    keys = list(view["nodes"])
    if st.session_state.get(SELECTED) not in view["nodes"]:
        st.session_state[SELECTED] = nkey(center["type"], center["id"])
    in_view = view["nodes"]
    chosen = (
        st.selectbox(
            "Selected node", keys, key=SELECTED, format_func=lambda k: f"{in_view[k]['name']} · {in_view[k]['type']}"
        )
        or keys[0]
    )
    node = view["nodes"][chosen]
    b1, b2 = st.columns(2)
    b1.button(
        "Re-centre here",
        on_click=_recentre,
        args=(chosen,),
        icon=":material/center_focus_strong:",
        disabled=chosen == nkey(center["type"], center["id"]),
        width="stretch",
    )
    b2.button(
        "Expand",
        on_click=_expand,
        args=(chosen,),
        icon=":material/unfold_more:",
        disabled=chosen in view["expanded"],
        help="Merge this node's neighbours into the graph",
        width="stretch",
    )
    st.markdown(f"### {esc(node['name'])}", unsafe_allow_html=True)
    st.caption(f"{node['type']} · id {node['id']}")
    props = node.get("props") or {}
    if props:
        st.dataframe(_props_table(props), hide_index=True, width="stretch")
    edges = _edges_table(view, chosen)
    st.markdown(f"**Edges in view** ({len(edges)})")
    if len(edges):
        st.dataframe(edges, hide_index=True, width="stretch", height=min(36 * (len(edges) + 1) + 2, 260))
    if node["type"] == "Drug":
        _drug_panel(node["id"])
