"""Helpers both graph backends share (no Cypher here): row → GNode/GEdge, property merging and flattening, the
bounded breadth-first neighbourhood, and the plan for bulk label writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from graph.cypher.guards import MERGED_LIST_KEYS, SEVERITY, rel_type
from graph.store import EDGE_TYPES, NODE_TYPES, GEdge, GNode
from kb_loaders.errors import InvalidInput
from kb_loaders.model import Edge, Node


def dumps(obj: Any) -> str:
    """Stable JSON (sorted keys, real UTF-8) so that unchanged props compare equal as strings."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {"raw": text}
    return v if isinstance(v, dict) else {"value": v}


def _union(a: Iterable[Any], b: Iterable[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for x in [*a, *b]:
        if x is not None and x != "":
            seen.setdefault(x, None)
    return list(seen)


def as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, (list, tuple, set, frozenset)):
        return list(v)
    return [v]


def merge_node(node_type: str, old_name: str, old_props: Mapping[str, Any], new_name: str,
               new_props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """What an existing node becomes when it is upserted again: new props win except the list props aliases and
    sources, which are unioned. A Drug keeps its first name (several sources name the same base-name node
    differently); a differing new name becomes an alias. Other types take the new name."""
    props = {**old_props, **new_props}
    for k in MERGED_LIST_KEYS:
        if k in old_props or k in new_props:
            props[k] = _union(as_list(old_props.get(k)), as_list(new_props.get(k)))
    name = new_name or old_name
    if node_type == "Drug" and old_name:
        name = old_name
        if new_name and new_name.casefold() != old_name.casefold():
            props["aliases"] = _union(as_list(props.get("aliases")), [new_name])
    return name, props


def search_text(node_id: str, name: str, props: Mapping[str, Any]) -> str:
    """'\\n'-separated lowercased id, name and aliases, framed by '\\n' (see the kuzu section)."""
    parts = _union([node_id.lower(), (name or "").lower()], [str(a).lower() for a in as_list(props.get("aliases"))])
    parts = [" ".join(p.split()) for p in parts]
    return "\n" + "\n".join(p for p in parts if p) + "\n"


def search_terms(q: str) -> tuple[str, str]:
    """($q, $qx) for find_entities: the lowercased, whitespace-collapsed query and its exact-match form."""
    s = " ".join(q.lower().split())
    return s, f"\n{s}\n"


def flatten_props(props: Mapping[str, Any]) -> dict[str, Any]:
    """Props as Neo4j property values: None dropped; str/int/float/bool and homogeneous lists of them kept;
    anything else (maps, mixed or nested lists) stored as a JSON string."""
    out: dict[str, Any] = {}
    for k, v in props.items():
        if v is None:
            continue
        if isinstance(v, (str, bool, int, float)):
            out[k] = v
        elif isinstance(v, (list, tuple)):
            items = [x for x in v if x is not None]
            kinds = {type(x) for x in items}
            if len(kinds) <= 1 and kinds <= {str, bool, int, float}:
                out[k] = items
            else:
                out[k] = dumps(list(v))
        else:
            out[k] = dumps(v)
    return out


def make_edge(edge_type: str, src: str, src_name: str | None, dst: str, dst_name: str | None, eid: str,
              props: dict[str, Any]) -> GEdge:
    s, d = EDGE_TYPES[edge_type]
    return GEdge(id=eid, type=edge_type, src=src, src_type=s, src_name=src_name or src, dst=dst, dst_type=d,
                 dst_name=dst_name or dst, props=props)


def make_node(node_type: str, node_id: str, name: str | None, props: dict[str, Any]) -> GNode:
    return GNode(id=node_id, type=node_type, name=name or node_id, props=props)


def severity_rank(level: Any) -> int:
    try:
        return SEVERITY.index(str(level))
    except ValueError:
        return len(SEVERITY) - 1


def parse_edge_id(edge_id: str) -> tuple[str, str, str] | None:
    """(type, src, dst) of an edge id `TYPE:src|dst` (kb_loaders.model.Edge.id); None when it is not one."""
    head, sep, rest = edge_id.partition(":")
    src, bar, dst = rest.partition("|")
    if not sep or not bar or head not in EDGE_TYPES or not src or not dst:
        return None
    return head, src, dst


def check_edge_types(edge_types: Iterable[str] | None) -> tuple[str, ...]:
    if edge_types is None:
        return tuple(EDGE_TYPES)
    if isinstance(edge_types, str):
        edge_types = [edge_types]
    chosen = {rel_type(t) for t in edge_types}
    return tuple(t for t in EDGE_TYPES if t in chosen)


def branches_for(node_types: Iterable[str], edge_types: Sequence[str]) -> list[tuple[str, bool]]:
    """(edge type, outgoing?) pairs that touch any of the node types, in whitelist order."""
    present = set(node_types)
    out: list[tuple[str, bool]] = []
    for t in edge_types:
        s, d = EDGE_TYPES[t]
        if s in present:
            out.append((t, True))
        if d in present:
            out.append((t, False))
    return out


# expand(frontier: {node type: [ids]}, edge types, cap) → (up to `cap` distinct edges touching the frontier, whether
# more may exist beyond what was returned)
ExpandFn = Callable[[dict[str, list[str]], Sequence[str], int], tuple[list[GEdge], bool]]
FetchNodesFn = Callable[[dict[str, list[str]]], list[GNode]]


def bounded_neighbourhood(start: GNode, depth: int, edge_types: Sequence[str], limit: int, expand: ExpandFn,
                          fetch_nodes: FetchNodesFn) -> tuple[list[GNode], list[GEdge], bool]:
    """Breadth-first, one bounded query round per hop: never more than ~2×limit+1 rows per branch, so hubs
    (a department with thousands of diseases, a common symptom) cost no more than a leaf. Edges already collected
    reappear when the next hop looks back along them; the cap allows for that, so `truncated` is exact except
    when a branch hit its cap (then it is conservatively True)."""
    edges: dict[str, GEdge] = {}
    visited: set[tuple[str, str]] = {(start["type"], start["id"])}
    frontier: dict[str, list[str]] = {start["type"]: [start["id"]]}
    truncated = False
    for _hop in range(depth):
        remaining = limit - len(edges)
        cap = remaining + len(edges) + 1
        got, maybe_more = expand(frontier, edge_types, cap)
        new = [e for e in got if e["id"] not in edges]
        if len(new) > remaining or maybe_more:
            truncated = True
        new = new[:max(remaining, 0)]
        nxt: dict[str, list[str]] = {}
        for e in new:
            edges[e["id"]] = e
            for key in ((e["src_type"], e["src"]), (e["dst_type"], e["dst"])):
                if key not in visited:
                    visited.add(key)
                    nxt.setdefault(key[0], []).append(key[1])
        if truncated or not nxt:
            break
        frontier = nxt
    by_type: dict[str, list[str]] = {}
    for t, i in visited:
        if (t, i) != (start["type"], start["id"]):
            by_type.setdefault(t, []).append(i)
    for ids in by_type.values():
        ids.sort()
    nodes = [start, *sorted(fetch_nodes(by_type), key=lambda n: (NODE_TYPES.index(n["type"]), n["id"]))]
    return nodes, list(edges.values()), truncated


# label id → (props, Drug nodes, {HAS_LABEL eid: (drug id, edge source)})
LabelPlan = dict[str, tuple[dict[str, Any], list[Node], dict[str, tuple[str, str]]]]


def plan_labels(items: Sequence[tuple[str, dict[str, Any], Sequence[Node]]]) -> LabelPlan:
    """label id → (props, Drug nodes, {HAS_LABEL eid: (drug id, source)}); a label given twice: the last wins."""
    plan: LabelPlan = {}
    for label_id, props, drugs in items:
        if not label_id:
            raise InvalidInput("label without an id")
        ds: list[Node] = []
        edges: dict[str, tuple[str, str]] = {}
        source = str(props.get("source") or "label")
        for d in drugs:
            if d.type != "Drug":
                raise InvalidInput(f"upsert_label takes Drug nodes, not {d.type} ({d.id})")
            if not d.id:
                continue
            ds.append(d)
            edges[Edge("HAS_LABEL", "Drug", d.id, "Label", label_id).id] = (d.id, source)
        plan[label_id] = (dict(props), ds, edges)
    return plan


def edge_from_row(edge_type: str, r: dict[str, Any]) -> GEdge:
    """A GEdge from a query row (src, src_name, dst, dst_name, eid, props, and the source/level columns)."""
    props = loads(r["props"])
    if r.get("source") is not None:
        props["source"] = r["source"]
    if r.get("level") is not None:
        props["level"] = r["level"]
    return make_edge(edge_type, r["src"], r["src_name"], r["dst"], r["dst_name"], r["eid"], props)
