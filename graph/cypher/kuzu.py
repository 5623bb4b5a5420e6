"""Every Cypher statement the kuzu (embedded) backend sends, in kuzu 0.11's dialect."""

from __future__ import annotations

from functools import cache

from graph.cypher.guards import _ends, _sev, node_label, rel_type
from graph.store import EDGE_TYPES

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
def kuzu_get_edge(edge_type: str) -> str:
    """One edge by its id, anchored on both endpoints' primary keys (ids are TYPE:src|dst, see Edge.id)."""
    t = rel_type(edge_type)
    s, d = _ends(t)
    return f"MATCH (a:{s} {{id: $src}})-[r:{t}]->(b:{d} {{id: $dst}}) WHERE r.eid = $eid {_kuzu_edge_return(t)}"


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
