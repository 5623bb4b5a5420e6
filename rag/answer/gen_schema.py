"""The compact JSON schema a generator is constrained to (not the full Answer), its limits, and parsing a model's
JSON output. Citation ids are restricted to the retrieved source ids."""

from __future__ import annotations

import json
import re
from typing import Any

from kb_loaders.sections import CANONICAL_SECTIONS

STATUSES = ("answered", "insufficient_evidence", "needs_clarification")
FACT_TYPES: tuple[str, ...] = (*CANONICAL_SECTIONS, "interaction", "graph")
MAX_ANSWER = 600
MAX_FACTS = 6
MAX_FACT_TEXT = 400
MAX_CITES = 3
MAX_QUOTE = 300
MAX_FOLLOW_UPS = 2
MAX_FOLLOW_UP = 200





def generation_schema(source_ids: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The compact JSON Schema for generation; citations are restricted to the retrieved source ids."""
    ids = list(dict.fromkeys(source_ids)) or ["S1"]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "answer", "facts", "follow_up_questions"],
        "properties": {
            "status": {"type": "string", "enum": list(STATUSES)},
            "answer": {"type": "string", "maxLength": MAX_ANSWER},
            "facts": {
                "type": "array",
                "maxItems": MAX_FACTS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "text", "citations", "quote"],
                    "properties": {
                        "type": {"type": "string", "enum": list(FACT_TYPES)},
                        "text": {"type": "string", "maxLength": MAX_FACT_TEXT},
                        "citations": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_CITES,
                            "items": {"type": "string", "enum": ids},
                        },
                        "quote": {"type": "string", "maxLength": MAX_QUOTE},
                    },
                },
            },
            "follow_up_questions": {
                "type": "array",
                "maxItems": MAX_FOLLOW_UPS,
                "items": {"type": "string", "maxLength": MAX_FOLLOW_UP},
            },
        },
    }


def schema_errors(obj: Any, schema: dict[str, Any]) -> list[str]:
    """JSON-schema validation messages (empty list = valid; also when jsonschema is not installed)."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - grounding does not depend on it; it only reports
        return []

    v = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in v.iter_errors(obj)][:20]


def parse_json(raw: str) -> Any:
    """The JSON object in a model's text: tolerates code fences and text around one object. Raises ValueError."""
    s = raw.strip()
    if not s:
        raise ValueError("empty output")
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", s, re.S)
    if fence:
        s = fence.group(1)
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        a, b = s.find("{"), s.rfind("}")
        if a < 0 or b <= a:
            raise ValueError("no JSON object in the output") from None
        try:
            return json.loads(s[a: b + 1])
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e.msg} at {e.pos}") from None
