# The two commands a new user runs are `make demo` and `make test` (see README.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
Q ?= What is naproxen used for?

.PHONY: setup demo ingest serve ui test test-unit test-fast test-servers lint browser-deps bench load

$(BIN)/drugrag: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned in the same command, so pip takes the local CPU wheel instead of a CUDA build
	$(BIN)/pip install -q torch==2.13.0 -e ".[dev,generate]"
	touch $(BIN)/drugrag

setup: $(BIN)/drugrag
	$(BIN)/drugrag setup

demo: setup
	$(BIN)/drugrag ingest
	$(BIN)/drugrag ask "$(Q)"
	$(BIN)/drugrag ask "华法林和阿司匹林能一起吃吗？"
	@echo "Next: '$(BIN)/drugrag serve' for the JSON API, '$(BIN)/drugrag ui' for the web app."

ingest: setup
	$(BIN)/drugrag ingest

serve: setup
	$(BIN)/drugrag serve

ui: setup
	$(BIN)/drugrag ui

browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)

test: setup browser-deps
	$(BIN)/pytest -q

test-unit: $(BIN)/drugrag
	$(BIN)/pytest -q tests/unit -m "not slow"

test-fast: setup
	$(BIN)/pytest -q -m "not slow and not browser"

test-servers: $(BIN)/drugrag
	PYTEST=$(BIN)/pytest scripts/test_servers.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

load: setup
	$(BIN)/python -m bench.load
