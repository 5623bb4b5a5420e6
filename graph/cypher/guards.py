"""Guards every Cypher statement passes before either backend sends it.

- Values only ever travel as `$parameters`. No user-supplied string is ever formatted into query text.
- The only identifiers interpolated into query text are node labels and relationship types, and only after
  `node_label` / `rel_type` checked them against the fixed NODE_TYPES / EDGE_TYPES whitelist (kb_loaders.model).
- `check_params` compares the `$names` a statement uses with the parameters given, before anything is sent, by
  both backends: kuzu 0.11 raises nothing for a missing parameter (`MATCH (n:Drug) WHERE n.id = $x` without x
  returned every Drug when tried).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from graph.store import EDGE_TYPES, NODE_TYPES
from kb_loaders.errors import InvalidInput

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
