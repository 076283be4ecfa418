# The verbs a person types. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTEST_ARGS ?=

.PHONY: help install run stop status test test-unit lint bench verify chaos soak clean

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## install uv, Java/Maven/Postgres where missing, and the Python workspace
	@bash scripts/bootstrap.sh

run: install  ## start Kafka, Postgres, migrations, demo data and the four services (Ctrl-C stops)
	@uv run python deploy/local/run.py

stop:  ## stop the services started by `make run` and the dev stack
	@uv run python deploy/local/run.py --stop || true
	@STACK=dev bash deploy/local/stack.sh stop

status:  ## show the dev stack
	@STACK=dev bash deploy/local/stack.sh status || true

test: install  ## unit + integration + e2e tests against a real local Kafka and PostgreSQL
	@bash scripts/test.sh $(PYTEST_ARGS)

test-unit: install  ## the pure tests only (no stack)
	@uv run pytest -m "not integration" $(PYTEST_ARGS)

verify: install  ## the invariant checker against the dev stack (PREFIX=… to scope, STACK=… elsewhere)
	@STACK=$${STACK:-dev} uv run python scripts/verify.py --prefix "$(PREFIX)"

chaos: install  ## the full fault suite (>10,000 events, every fault); figures in test-artifacts/reliability.json
	@CHAOS_SCALE=full bash scripts/test.sh tests/reliability/test_chaos.py tests/reliability/test_chaos_sweeps.py -s $(PYTEST_ARGS)

lint: install  ## ruff + mypy
	@uv run ruff check .
	@uv run mypy libs/common/src services/*/src tools/creditctl/src

bench: install  ## every bench/*.py (BENCH=name for one, ARGS=… to each)
	@bash scripts/bench.sh $(ARGS)

RATE ?= 1000
DURATION ?= 600
soak: install  ## balance events at RATE/s (1000) for DURATION s (600): latency, lag, memory
	@BENCH=soak bash scripts/bench.sh --rate $(RATE) --duration $(DURATION)

clean:  ## remove local stacks' data and caches (jars stay)
	@STACK=dev bash deploy/local/stack.sh reset || true
	@STACK=test bash deploy/local/stack.sh reset || true
	@rm -rf test-artifacts .pytest_cache .mypy_cache .ruff_cache
