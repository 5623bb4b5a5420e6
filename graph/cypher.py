"""Every Cypher statement either graph backend sends, plus the guards and small helpers both backends share.

Rules (enforced here, relied on by graph/embedded.py and graph/neo4j_store.py):
- Values only ever travel as `$parameters`. No user-supplied string is ever formatted into query text.
- The only identifiers interpolated into query text are node labels and relationship types, and only after
  `node_label` / `rel_type` checked them against the fixed NODE_TYPES / EDGE_TYPES whitelist in graph/store.py.
- `check_params` compares the `$names` a statement uses with the parameters given, before anything is sent, by
  both backends: kuzu 0.11 raises nothing for a missing parameter (`MATCH (n:Drug) WHERE n.id = $x` without x
  returned every Drug when tried).

Sections: guards · kuzu (0.11 dialect) · Neo4j 5 · helpers shared by both backends (row → GNode/GEdge, property
merging, the bounded breadth-first neighbourhood).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from graph.store import EDGE_TYPES, NODE_TYPES, GEdge, GNode
from kb_loaders.model import Edge, Node
from rag.errors import InvalidInput

# ============================================================================================================
# guards
# ============================================================================================================

_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
SEVERITY: tuple[str, ...] = ("Major", "Moderate", "Minor", "Unknown")
# node props that are columns/properties of their own, never part of GNode.props
RESERVED_NODE_KEYS = frozenset({"id", "name", "search"})
MERGED_LIST_KEYS = ("aliases", "sources")  # list props that are unioned, not replaced, when a node is upserted


def query_params(query: str) -> frozenset[str]:
    """The `$parameter` names a statement uses."""
    return frozenset(_PARAM_RE.findall(query))


def check_params(query: str, params: Mapping[str, Any] | None) -> None:
    """Raise ValueError unless `params` supplies exactly the parameters the statement uses."""
    need = query_params(query)
    have = frozenset(params or ())
    if need != have:
        missing, extra = sorted(need - have), sorted(have - need)
        raise ValueError(f"Cypher parameters do not match the statement: missing {missing}, unexpected {extra}")


def node_label(node_type: str) -> str:
    """A node type, checked against the whitelist (the only way a label gets into query text)."""
    if node_type not in NODE_TYPES:
        raise InvalidInput(f"unknown node type {node_type!r}; expected one of {', '.join(NODE_TYPES)}")
    return node_type


def rel_type(edge_type: str) -> str:
    """An edge type, checked against the whitelist (the only way a relationship type gets into query text)."""
    if edge_type not in EDGE_TYPES:
        raise InvalidInput(f"unknown edge type {edge_type!r}; expected one of {', '.join(EDGE_TYPES)}")
    return edge_type


def _ends(edge_type: str) -> tuple[str, str]:
    s, d = EDGE_TYPES[rel_type(edge_type)]
    return node_label(s), node_label(d)


def _sev(var: str = "r") -> str:
    return (f"CASE {var}.level WHEN 'Major' THEN 0 WHEN 'Moderate' THEN 1 WHEN 'Minor' THEN 2 ELSE 3 END")


# ============================================================================================================
# kuzu (embedded)
#   Schema: one NODE TABLE per node type (id PK, name, search, props JSON), one REL TABLE per edge type
#   (eid, source, props JSON; INTERACTS_WITH also level), and Meta(key PK, value).
#   `search` is "\n" + "\n".join(lowercased id, name, aliases…) + "\n": `CONTAINS $q` is a substring match on any
#   of them, `CONTAINS "\n"+q+"\n"` an exact match on one of them.
#   Bulk writes COPY FROM a pyarrow table passed as the `$data` parameter.
# ============================================================================================================

KUZU_CREATE_META = "CREATE NODE TABLE IF NOT EXISTS Meta(key STRING, value STRING, PRIMARY KEY(key))"
KUZU_SHOW_TABLES = "CALL show_tables() RETURN name"
KUZU_BEGIN = "BEGIN TRANSACTION"
KUZU_COMMIT = "COMMIT"
KUZU_ROLLBACK = "ROLLBACK"
KUZU_GET_META = "MATCH (m:Meta {key: $key}) RETURN m.value AS value"
KUZU_SET_META = "MERGE (m:Meta {key: $key}) SET m.value = $value"


@cache
def kuzu_create_node_table(node_type: str) -> str:
    t = node_label(node_type)
    return f"CREATE NODE TABLE IF NOT EXISTS {t}(id STRING, name STRING, search STRING, props STRING, PRIMARY KEY(id))"


def kuzu_has_level(edge_type: str) -> bool:
    return rel_type(edge_type) == "INTERACTS_WITH"


@cache
def kuzu_create_rel_table(edge_type: str) -> str:
    t = rel_type(edge_type)
    s, d = _ends(t)
    level = ", level STRING" if kuzu_has_level(t) else ""
    return f"CREATE REL TABLE IF NOT EXISTS {t}(FROM {s} TO {d}, eid STRING, source STRING{level}, props STRING)"


@cache
def kuzu_copy(table: str) -> str:
    """COPY a pyarrow table ($data) into a node or rel table (columns in table order; rels: from, to first)."""
    t = table if table in EDGE_TYPES else node_label(table)
    return f"COPY {t} FROM $data"


@cache
def kuzu_node_ids(node_type: str) -> str:
    return f"MATCH (n:{node_label(node_type)}) RETURN n.id AS id"


@cache
def kuzu_node_rows(node_type: str) -> str:
    return f"MATCH (n:{node_label(node_type)}) RETURN n.id AS id, n.name AS name, n.props AS props"


@cache
def kuzu_nodes_by_ids(node_type: str) -> str:
    return f"MATCH (n:{node_label(node_type)}) WHERE n.id IN $ids RETURN n.id AS id, n.name AS name, n.props AS props"


@cache
def kuzu_create_nodes(node_type: str) -> str:
    t = node_label(node_type)
    return (f"UNWIND $rows AS row CREATE (n:{t} {{id: row.id, name: row.name, search: row.search, "
            f"props: row.props}})")


@cache
def kuzu_update_nodes(node_type: str) -> str:
    t = node_label(node_type)
    return (f"UNWIND $rows AS row MATCH (n:{t} {{id: row.id}}) "
            f"SET n.name = row.name, n.search = row.search, n.props = row.props")


@cache
def kuzu_count_nodes(node_type: str) -> str:
    return f"MATCH (n:{node_label(node_type)}) RETURN count(n) AS n"


@cache
def kuzu_count_edges(edge_type: str) -> str:
    return f"MATCH ()-[r:{rel_type(edge_type)}]->() RETURN count(r) AS n"


@cache
def kuzu_edge_rows(edge_type: str) -> str:
    """Every edge of a type with what upsert_edges compares (eid, source, [level], props)."""
    t = rel_type(edge_type)
    s, d = _ends(t)
    level = "r.level AS level, " if kuzu_has_level(t) else ""
    return f"MATCH (a:{s})-[r:{t}]->(b:{d}) RETURN r.eid AS eid, r.source AS source, {level}r.props AS props"


@cache
def kuzu_create_edges(edge_type: str) -> str:
    """Small batches of new edges (COPY has a fixed cost of ~100 ms; this costs ~1 ms per edge)."""
    t = rel_type(edge_type)
    s, d = _ends(t)
    level = ", level: row.level" if kuzu_has_level(t) else ""
    return (f"UNWIND $rows AS row MATCH (a:{s} {{id: row.src}}) MATCH (b:{d} {{id: row.dst}}) "
            f"CREATE (a)-[:{t} {{eid: row.eid, source: row.source{level}, props: row.props}}]->(b)")


@cache
def kuzu_update_edges(edge_type: str) -> str:
    t = rel_type(edge_type)
    s, d = _ends(t)
    level = ", r.level = row.level" if kuzu_has_level(t) else ""
    return (f"UNWIND $rows AS row MATCH (a:{s} {{id: row.src}})-[r:{t}]->(b:{d} {{id: row.dst}}) "
            f"WHERE r.eid = row.eid SET r.source = row.source, r.props = row.props{level}")


@cache
def kuzu_delete_source(edge_type: str) -> str:
    return f"MATCH ()-[r:{rel_type(edge_type)}]->() WHERE r.source = $source DELETE r RETURN count(r) AS n"


# --- labels ---
KUZU_MERGE_LABEL = "MERGE (l:Label {id: $id}) SET l.name = $name, l.search = $search, l.props = $props"
KUZU_LABEL_EDGES = ("MATCH (d:Drug)-[r:HAS_LABEL]->(l:Label {id: $id}) "
                    "RETURN d.id AS src, r.eid AS eid, r.source AS source, r.props AS props")
KUZU_ALL_LABEL_EDGES = ("MATCH (d:Drug)-[r:HAS_LABEL]->(l:Label) "
                        "RETURN d.id AS src, l.id AS dst, r.eid AS eid, r.source AS source, r.props AS props")
KUZU_DELETE_LABEL_EDGES_TO = "MATCH (d:Drug)-[r:HAS_LABEL]->(l:Label {id: $id}) WHERE d.id IN $drugs DELETE r"
KUZU_DELETE_LABEL_EDGE_PAIRS = ("UNWIND $rows AS row MATCH (d:Drug {id: row.src})-[r:HAS_LABEL]->"
                                "(l:Label {id: row.dst}) DELETE r")
KUZU_CREATE_LABEL_EDGES = ("UNWIND $rows AS row MATCH (d:Drug {id: row.src}), (l:Label {id: row.dst}) "
                           "CREATE (d)-[:HAS_LABEL {eid: row.eid, source: row.source, props: row.props}]->(l)")
KUZU_COUNT_LABEL = "MATCH (l:Label {id: $id}) RETURN count(l) AS n"
KUZU_DELETE_LABEL = "MATCH (l:Label {id: $id}) DETACH DELETE l"
KUZU_LABEL_PROPS = "MATCH (l:Label) RETURN l.id AS id, l.props AS props"
KUZU_LABELS_OF_DRUG = "MATCH (d:Drug {id: $id})-[:HAS_LABEL]->(l:Label) RETURN l.id AS id ORDER BY id"
KUZU_DRUG_LABEL_INDEX = "MATCH (d:Drug)-[:HAS_LABEL]->(l:Label) RETURN d.id AS drug, l.id AS label ORDER BY drug, label"

# --- reads ---
_KUZU_EDGE_COLS = "a.id AS src, a.name AS src_name, b.id AS dst, b.name AS dst_name, r.eid AS eid, r.source AS source"


def _kuzu_edge_return(edge_type: str) -> str:
    level = ", r.level AS level" if kuzu_has_level(edge_type) else ""
    return f"RETURN {_KUZU_EDGE_COLS}{level}, r.props AS props"


@cache
def kuzu_find(node_type: str) -> str:
    t = node_label(node_type)
    return (f"MATCH (n:{t}) WHERE n.search CONTAINS $q "
            f"RETURN n.id AS id, n.name AS name, n.props AS props, n.search CONTAINS $qx AS exact, "
            f"size(n.name) AS len ORDER BY exact DESC, len ASC, id ASC LIMIT $limit")


@cache
def kuzu_get_node(node_type: str) -> str:
    return f"MATCH (n:{node_label(node_type)} {{id: $id}}) RETURN n.id AS id, n.name AS name, n.props AS props"


KUZU_INTERACTIONS_BETWEEN = (
    "MATCH (a:Drug)-[r:INTERACTS_WITH]->(b:Drug) WHERE a.id IN $ids AND b.id IN $ids "
    + _kuzu_edge_return("INTERACTS_WITH") + " ORDER BY eid")
KUZU_INTERACTIONS_OUT = (
    "MATCH (a:Drug {id: $id})-[r:INTERACTS_WITH]->(b:Drug) " + _kuzu_edge_return("INTERACTS_WITH")
    + f", {_sev()} AS sev ORDER BY sev, dst_name, eid LIMIT $limit")
KUZU_INTERACTIONS_IN = (
    "MATCH (a:Drug)-[r:INTERACTS_WITH]->(b:Drug {id: $id}) " + _kuzu_edge_return("INTERACTS_WITH")
    + f", {_sev()} AS sev ORDER BY sev, src_name, eid LIMIT $limit")


@cache
def kuzu_expand(edge_type: str, outgoing: bool) -> str:
    """Edges of one type whose source (outgoing) or target (incoming) id is in $ids; at most $limit. The anchored
    end comes first in the pattern (kuzu then expands from it instead of scanning the whole rel table).
    INTERACTS_WITH edges come most severe first; other types in storage order (sorting a hub's thousands of
    edges would cost more than the query)."""
    t = rel_type(edge_type)
    s, d = _ends(t)
    pattern = f"(a:{s})-[r:{t}]->(b:{d}) WHERE a.id IN $ids" if outgoing else \
        f"(b:{d})<-[r:{t}]-(a:{s}) WHERE b.id IN $ids"
    order = f", {_sev()} AS sev ORDER BY sev, eid" if kuzu_has_level(t) else ""
    return f"MATCH {pattern} {_kuzu_edge_return(t)}{order} LIMIT $limit"


@cache
def kuzu_expand_one(edge_type: str, outgoing: bool) -> str:
    """kuzu_expand for a single node ($id): a primary-key lookup, about twice as fast as `IN [one id]`."""
    t = rel_type(edge_type)
    s, d = _ends(t)
    pattern = f"(a:{s} {{id: $id}})-[r:{t}]->(b:{d})" if outgoing else f"(b:{d} {{id: $id}})<-[r:{t}]-(a:{s})"
    order = f", {_sev()} AS sev ORDER BY sev, eid" if kuzu_has_level(t) else ""
    return f"MATCH {pattern} {_kuzu_edge_return(t)}{order} LIMIT $limit"


# ============================================================================================================
# Neo4j 5
#   Nodes: :Type {id, name, search, …flattened props}; constraint on id per type, text index on search.
#   Relationships: [:TYPE {eid, source, …flattened props}]; range indexes on eid and source.
#   Props are flattened to Neo4j property values (primitives, homogeneous primitive lists); anything else is a JSON
#   string. Drug aliases/sources are unioned in Cypher so concurrent sources never drop each other's names.
# ============================================================================================================

NEO4J_META_CONSTRAINT = "CREATE CONSTRAINT meta_key IF NOT EXISTS FOR (m:Meta) REQUIRE m.key IS UNIQUE"
NEO4J_GET_META = "MATCH (m:Meta {key: $key}) RETURN m.value AS value"
NEO4J_SET_META = "MERGE (m:Meta {key: $key}) SET m.value = $value"


@cache
def neo4j_constraint(node_type: str) -> str:
    t = node_label(node_type)
    return f"CREATE CONSTRAINT {t.lower()}_id IF NOT EXISTS FOR (n:{t}) REQUIRE n.id IS UNIQUE"


@cache
def neo4j_search_index(node_type: str) -> str:
    t = node_label(node_type)
    return f"CREATE TEXT INDEX {t.lower()}_search IF NOT EXISTS FOR (n:{t}) ON (n.search)"


@cache
def neo4j_rel_index(edge_type: str, prop: str) -> str:
    if prop not in ("eid", "source"):
        raise ValueError(f"no index on relationship property {prop!r}")
    t = rel_type(edge_type)
    return f"CREATE INDEX {t.lower()}_{prop} IF NOT EXISTS FOR ()-[r:{t}]-() ON (r.{prop})"


def neo4j_schema() -> list[str]:
    """Every schema statement ensure_schema sends, in order."""
    out = [neo4j_constraint(t) for t in NODE_TYPES]
    out += [neo4j_search_index(t) for t in NODE_TYPES]
    out += [neo4j_rel_index(t, p) for t in EDGE_TYPES for p in ("eid", "source")]
    out.append(NEO4J_META_CONSTRAINT)
    return out


# Drug: the first name written stays the node's name (other names become aliases); aliases/sources are unioned.
NEO4J_UPSERT_DRUGS = (
    "UNWIND $rows AS row "
    "MERGE (n:Drug {id: row.id}) "
    "ON CREATE SET n.name = row.name "
    "SET n += row.props "
    "WITH n, row, CASE WHEN toLower(n.name) = toLower(row.name) THEN row.aliases "
    "ELSE row.aliases + [row.name] END AS names "
    "SET n.aliases = reduce(acc = coalesce(n.aliases, []), a IN names | "
    "CASE WHEN a IN acc THEN acc ELSE acc + [a] END), "
    "n.sources = reduce(acc = coalesce(n.sources, []), s IN row.sources | "
    "CASE WHEN s IN acc THEN acc ELSE acc + [s] END) "
    "WITH n "
    "SET n.search = '\\n' + toLower(reduce(acc = n.id + '\\n' + n.name, a IN n.aliases | acc + '\\n' + a)) + '\\n'"
)
# Label: properties replaced as a whole (a new version of a label drops the old version's fields)
NEO4J_UPSERT_LABEL_NODES = "UNWIND $rows AS row MERGE (n:Label {id: row.id}) SET n = row.props"


@cache
def neo4j_upsert_nodes(node_type: str) -> str:
    t = node_label(node_type)
    if t == "Drug":
        return NEO4J_UPSERT_DRUGS
    if t == "Label":
        return NEO4J_UPSERT_LABEL_NODES
    return (f"UNWIND $rows AS row MERGE (n:{t} {{id: row.id}}) "
            f"SET n += row.props, n.name = row.name, n.search = row.search")


@cache
def neo4j_upsert_edges(edge_type: str) -> str:
    t = rel_type(edge_type)
    s, d = _ends(t)
    return (f"UNWIND $rows AS row MATCH (a:{s} {{id: row.src}}) MATCH (b:{d} {{id: row.dst}}) "
            f"MERGE (a)-[r:{t} {{eid: row.eid}}]->(b) SET r.source = row.source, r += row.props "
            f"RETURN count(r) AS n")


@cache
def neo4j_delete_source(edge_type: str) -> str:
    return (f"MATCH ()-[r:{rel_type(edge_type)}]->() WHERE r.source = $source "
            f"WITH r LIMIT $batch DELETE r RETURN count(*) AS n")


NEO4J_PRUNE_LABEL_EDGES = ("UNWIND $rows AS row MATCH (d:Drug)-[r:HAS_LABEL]->(l:Label {id: row.id}) "
                           "WHERE NOT d.id IN row.drugs DELETE r")
NEO4J_DELETE_LABEL = "MATCH (l:Label {id: $id}) DETACH DELETE l RETURN count(*) AS n"
NEO4J_LABEL_HASHES = "MATCH (l:Label) RETURN l.id AS id, l.content_hash AS content_hash"
NEO4J_LABELS_OF_DRUG = "MATCH (d:Drug {id: $id})-[:HAS_LABEL]->(l:Label) RETURN l.id AS id ORDER BY id"
NEO4J_DRUG_LABEL_INDEX = ("MATCH (d:Drug)-[:HAS_LABEL]->(l:Label) RETURN d.id AS drug, l.id AS label "
                          "ORDER BY drug, label")


@cache
def neo4j_count_nodes(node_type: str) -> str:
    return f"MATCH (n:{node_label(node_type)}) RETURN count(n) AS n"


@cache
def neo4j_count_edges(edge_type: str) -> str:
    return f"MATCH ()-[r:{rel_type(edge_type)}]->() RETURN count(r) AS n"


@cache
def neo4j_names(node_type: str) -> str:
    return (f"MATCH (n:{node_label(node_type)}) "
            f"RETURN n.id AS id, n.name AS name, coalesce(n.aliases, []) AS aliases")


@cache
def neo4j_get_node(node_type: str) -> str:
    return (f"MATCH (n:{node_label(node_type)} {{id: $id}}) "
            f"RETURN n.id AS id, n.name AS name, properties(n) AS props")


@cache
def neo4j_find(node_types: tuple[str, ...]) -> str:
    """One branch per type (each ordered and limited), UNION ALL; the caller merges and cuts to the limit."""
    branches = [
        f"MATCH (n:{node_label(t)}) WHERE n.search CONTAINS $q "
        f"RETURN '{t}' AS type, n.id AS id, n.name AS name, properties(n) AS props, "
        f"n.search CONTAINS $qx AS exact ORDER BY exact DESC, size(n.name) ASC, id ASC LIMIT $limit"
        for t in node_types
    ]
    return " UNION ALL ".join(branches)


@cache
def neo4j_nodes_by_ids(node_types: tuple[str, ...]) -> str:
    branches = [
        f"MATCH (n:{node_label(t)}) WHERE n.id IN $ids_{t} "
        f"RETURN '{t}' AS type, n.id AS id, n.name AS name, properties(n) AS props"
        for t in node_types
    ]
    return " UNION ALL ".join(branches)


_NEO4J_EDGE_COLS = ("a.id AS src, a.name AS src_name, b.id AS dst, b.name AS dst_name, r.eid AS eid, "
                    "properties(r) AS props")
NEO4J_INTERACTIONS_BETWEEN = (
    "MATCH (a:Drug)-[r:INTERACTS_WITH]->(b:Drug) WHERE a.id IN $ids AND b.id IN $ids "
    f"RETURN 'INTERACTS_WITH' AS type, {_NEO4J_EDGE_COLS} ORDER BY eid")
NEO4J_INTERACTIONS_OF = (
    "MATCH (:Drug {id: $id})-[r:INTERACTS_WITH]-(:Drug) "
    "WITH DISTINCT r WITH r, startNode(r) AS a, endNode(r) AS b "
    f"RETURN 'INTERACTS_WITH' AS type, {_NEO4J_EDGE_COLS} "
    f"ORDER BY {_sev()}, CASE WHEN a.id = $id THEN b.name ELSE a.name END, eid LIMIT $limit")


@cache
def neo4j_expand(branches: tuple[tuple[str, bool], ...]) -> str:
    """One hop from a frontier: a branch per (edge type, outgoing?) anchored on `$ids_<Type>` of the anchored end,
    each ordered (most severe first for INTERACTS_WITH, then edge id) and limited to $cap, UNION ALL. `dir` tells
    the caller which branch a row came from (to know whether that branch hit its cap)."""
    parts = []
    for edge_type, outgoing in branches:
        t = rel_type(edge_type)
        s, d = _ends(t)
        anchor, anchor_type = ("a", s) if outgoing else ("b", d)
        order = f"{_sev()}, eid" if t == "INTERACTS_WITH" else "eid"
        parts.append(
            f"MATCH (a:{s})-[r:{t}]->(b:{d}) WHERE {anchor}.id IN $ids_{anchor_type} "
            f"RETURN '{t}' AS type, '{'out' if outgoing else 'in'}' AS dir, {_NEO4J_EDGE_COLS} "
            f"ORDER BY {order} LIMIT $cap")
    return " UNION ALL ".join(parts)


# ============================================================================================================
# helpers shared by both backends (no Cypher below)
# ============================================================================================================


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
