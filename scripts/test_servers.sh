#!/usr/bin/env bash
# Contract tests against the real Qdrant and Neo4j servers of docker-compose.yml (needs a Docker engine with the
# Compose v2 plugin: `docker compose up --wait`). Where no engine exists (CI here) the `qdrant`/`neo4j` tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST="${PYTEST:-.venv/bin/pytest}"
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
export NEO4J_PASSWORD="${NEO4J_PASSWORD:-$(secret)}" QDRANT_API_KEY="${QDRANT_API_KEY:-$(secret)}"
# compose interpolates the whole file: the services not started here still need their variables
export VLLM_API_KEY="${VLLM_API_KEY:-unused-$(secret)}" DRUGRAG_API_KEYS="${DRUGRAG_API_KEYS:-unused-$(secret)}"
export DRUGRAG_UI_API_KEY="${DRUGRAG_UI_API_KEY:-unused}" MODEL_DIR="${MODEL_DIR:-./models}"
compose=(docker compose -p drugrag-contract)
"${compose[@]}" version >/dev/null
trap '"${compose[@]}" down -v >/dev/null 2>&1 || true' EXIT
"${compose[@]}" up -d --wait qdrant neo4j
DRUGRAG_QDRANT_URL=http://127.0.0.1:6333 DRUGRAG_QDRANT_API_KEY="$QDRANT_API_KEY" \
DRUGRAG_NEO4J_URI=bolt://127.0.0.1:7687 DRUGRAG_NEO4J_PASSWORD="$NEO4J_PASSWORD" \
  "$PYTEST" -q -m "qdrant or neo4j" tests/unit "$@"
