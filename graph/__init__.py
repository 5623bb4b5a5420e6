"""Knowledge graph: one GraphStore protocol, an embedded Cypher engine (kuzu) and Neo4j."""
