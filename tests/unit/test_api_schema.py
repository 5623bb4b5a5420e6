"""Every route's responses match its OpenAPI schema: schemathesis fuzzes each operation of the real app over the
sample KB (HashEmbedder) — valid and invalid inputs — and checks no 5xx, documented statuses, content types, headers
and bodies (the one error body included)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rag.apps.api import create_app
from rag.service import DrugService
from tests.conftest import make_settings

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 25}  # per operation (fewer when the space is small)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def app(hash_kb_home):
    svc = DrugService(make_settings(hash_kb_home, embedding_model="hash", trusted_hosts=["*"],
                                    rate_limit_per_minute=0))
    application = create_app(svc)
    with TestClient(application):  # runs the lifespan (warm-up) once
        yield application
    svc.close()


def fuzz(op, mode: GenerationMode, label: str, counts: dict[str, int]) -> None:
    @settings(max_examples=EXAMPLES[mode], deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case):
        counts[label] = counts.get(label, 0) + 1
        case.call_and_validate(checks=CHECKS)

    try:
        check()
    except Unsatisfiable:  # nothing to negate: the operation takes no parameters and no body
        assert mode is GenerationMode.NEGATIVE and counts.get(label, 0) == 0


@pytest.mark.slow  # ~25 s on 2 cores: runs in `make test` (CI), not in the < 60 s inner loop
def test_every_operation_conforms_to_its_schema(app):
    # invalid input must be refused with a 4xx this API documents (414: an over-long URL), never a 5xx
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": [400, 401, 404, 413, 414, 422, 429]}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in EXAMPLES:
            fuzz(op, mode, f"{op.method.upper()} {op.path} {mode.value}", counts)
    print("schemathesis cases per operation:", counts, "total", sum(counts.values()))
    ops = {k.rsplit(" ", 1)[0] for k in counts}
    assert {"POST /v1/ask", "POST /v1/chat/completions", "GET /v1/drugs/{drug_id}", "GET /healthz"} <= ops
    assert sum(v for k, v in counts.items() if k.endswith("negative")) >= 100
    assert sum(counts.values()) >= 500
