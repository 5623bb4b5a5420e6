"""The JSON API over the real sample KB (HashEmbedder, no model): routes, schema, errors mapped to HTTP statuses."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rag.answer.schema import Answer
from rag.apps.api import create_app
from rag.service import DrugService
from rag.stores.edge import EdgeVectorStore
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def client(hash_service):
    with TestClient(create_app(hash_service), base_url="http://127.0.0.1") as c:
        yield c


def test_ask_returns_a_cited_answer(client):
    r = client.post("/v1/ask", json={"question": "Who should not take naproxen?"})
    assert r.status_code == 200
    ans = Answer.model_validate(r.json())
    assert ans.status == "answered"
    assert ans.citations[0].doc_id == "000155a8-709c-44e5-a75f-cd890f3a7caf"
    assert ans.citations[0].section == "contraindications"


def test_ask_with_history(client):
    r = client.post("/v1/ask", json={"question": "What about the dose?", "history": [
        {"role": "user", "content": "What is olanzapine used for?"}, {"role": "assistant", "content": "…"}]})
    assert r.status_code == 200 and r.json()["citations"][0]["section"] == "dosage"


@pytest.mark.parametrize("body, needle", [
    ({"question": ""}, "question"),
    ({"question": "   "}, "empty"),
    ({"question": "x" * 2001}, "question"),
    ({"q": "warfarin"}, "question"),
    ({"question": 42}, "question"),
])
def test_ask_rejects_bad_input_with_422(client, body, needle):
    r = client.post("/v1/ask", json=body)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_ask_rejects_malformed_json(client):
    r = client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "InvalidInput"


def test_interactions_route(client):
    r = client.post("/v1/interactions", json={"drugs": ["warfarin", "aspirin"]})
    assert r.status_code == 200
    assert r.json()["interactions"][0]["severity"] == "major"
    assert client.post("/v1/interactions", json={"drugs": ["warfarin"]}).status_code == 422
    r = client.post("/v1/interactions", json={"drugs": ["warfarin", "fooxaban"]})
    assert r.status_code == 404 and "fooxaban" in r.json()["detail"]


def test_drug_route_returns_label_sections_and_graph_facts(client):
    r = client.get("/v1/drugs/naproxen")
    assert r.status_code == 200
    body = r.json()
    assert body["drug"]["id"] == "naproxen"
    lab = next(x for x in body["labels"] if x["label_id"] == "000155a8-709c-44e5-a75f-cd890f3a7caf")
    assert {"indications", "dosage", "boxed_warning"} <= {s["key"] for s in lab["sections"]}
    assert body["interactions"] and body["interactions"][0]["type"] == "INTERACTS_WITH"
    assert client.get("/v1/drugs/fooxaban").status_code == 404


def test_search_and_graph_routes(client):
    r = client.get("/v1/search", params={"q": "naproxen"})
    assert r.status_code == 200 and any(x["id"] == "naproxen" and x["type"] == "Drug" for x in r.json())
    r = client.get("/v1/graph/entities", params={"q": "高血压", "types": "Disease"})
    assert r.status_code == 200 and r.json()[0]["type"] == "Disease"
    r = client.get("/v1/graph/neighbourhood", params={"id": "高血压", "type": "Disease", "depth": 1, "limit": 20})
    body = r.json()
    assert r.status_code == 200 and len(body["edges"]) <= 20 and body["truncated"] is True
    r = client.get("/v1/graph/neighbourhood", params={"id": "naproxen", "type": "Drug", "types": "HAS_LABEL"})
    assert r.status_code == 200 and {e["type"] for e in r.json()["edges"]} == {"HAS_LABEL"}
    assert client.get("/v1/graph/neighbourhood", params={"id": "x", "depth": 9}).status_code == 422
    assert client.get("/v1/graph/neighbourhood", params={"id": "no-such-entity"}).status_code == 404
    assert client.get("/v1/search", params={"q": ""}).status_code == 422


def test_health_and_openapi(client):
    assert client.get("/healthz").json()["ok"] is True
    spec = client.get("/openapi.json").json()
    assert "Answer" in spec["components"]["schemas"] and "Citation" in spec["components"]["schemas"]
    assert client.get("/v1/schema/answer").json()["properties"]["status"]


def test_store_down_is_503_with_a_clear_message(hash_kb_copy):
    holder = EdgeVectorStore(hash_kb_copy / "qdrant-edge")  # another process-like owner holds the embedded store
    try:
        svc = DrugService(make_settings(hash_kb_copy, embedding_model="hash"))
        with TestClient(create_app(svc), base_url="http://127.0.0.1") as c:
            r = c.post("/v1/ask", json={"question": "What is naproxen used for?"})
            assert r.status_code == 503
            assert "in use" in r.json()["detail"]
            assert c.get("/healthz").status_code == 503
    finally:
        holder.close()


def test_qdrant_server_down_is_503(hash_kb_copy):
    svc = DrugService(make_settings(hash_kb_copy, embedding_model="hash", vector_backend="qdrant",
                                    qdrant_url="http://127.0.0.1:9"))
    with TestClient(create_app(svc), base_url="http://127.0.0.1") as c:
        r = c.post("/v1/ask", json={"question": "What is naproxen used for?"})
        assert r.status_code == 503 and "unavailable" in r.json()["detail"]


def test_missing_knowledge_base_is_503_not_an_empty_answer(tmp_path):
    svc = DrugService(make_settings(tmp_path / "never-ingested", embedding_model="hash"))
    with TestClient(create_app(svc), base_url="http://127.0.0.1") as c:
        r = c.post("/v1/ask", json={"question": "What is naproxen used for?"})
        assert r.status_code == 503 and "drugrag ingest" in r.json()["detail"]
    assert not (tmp_path / "never-ingested" / "kuzu").exists()
