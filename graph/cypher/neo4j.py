"""Every Cypher statement the Neo4j 5 backend sends."""

from __future__ import annotations

from functools import cache

from graph.cypher.guards import _ends, _sev, node_label, rel_type
from graph.store import EDGE_TYPES, NODE_TYPES

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
def neo4j_get_edge(edge_type: str) -> str:
    """One edge by its id, anchored on both endpoints (ids are TYPE:src|dst, see Edge.id)."""
    t = rel_type(edge_type)
    s, d = _ends(t)
    return (f"MATCH (a:{s} {{id: $src}})-[r:{t} {{eid: $eid}}]->(b:{d} {{id: $dst}}) "
            f"RETURN '{t}' AS type, {_NEO4J_EDGE_COLS}")


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
