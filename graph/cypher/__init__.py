"""All Cypher the graph backends send, one module per backend (kuzu.py, neo4j.py), behind the guards in guards.py.

`from graph import cypher as C` gives every statement and guard by name.
"""

from graph.cypher.guards import *  # noqa: F403
from graph.cypher.kuzu import *  # noqa: F403
from graph.cypher.neo4j import *  # noqa: F403
