# The verbs a person types. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTEST_ARGS ?=

.PHONY: help install run play stop status test test-unit lint bench bench-instructions verify chaos soak clean run-ha stop-ha status-ha chaos-ha

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install:  ## install uv, Java/Maven/Postgres where missing, and the Python workspace
	@bash scripts/bootstrap.sh

run: install  ## start Kafka, Postgres, migrations, demo data and the four services (Ctrl-C stops)
	@uv run python deploy/local/run.py

play: install  ## `make run` with the simulation clock on, then a month of business time in a few minutes (Ctrl-C stops)
	@uv run python deploy/local/play.py

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

run-ha: install  ## the production-shaped stack (3 Kafka brokers, pg_auto_failover) and the four services on it
	@STACK=ha bash deploy/local/stack.sh start
	@eval "$$(STACK=ha bash deploy/local/stack.sh env)" && STACK=ha uv run python deploy/local/run.py --ha

stop-ha:  ## stop the services of `make run-ha` and the ha stack
	@STACK=ha uv run python deploy/local/run.py --ha --stop || true
	@STACK=ha bash deploy/local/stack.sh stop

status-ha:  ## show the ha stack: brokers, postgres nodes, the monitor's view
	@STACK=ha bash deploy/local/stack.sh status || true

chaos-ha: install  ## broker kills and a PostgreSQL failover under load on the ha stack; figures in test-artifacts/chaos_ha.json
	@STACK=ha CREDITCTL_TEST_BASE_PORT=$${CREDITCTL_TEST_BASE_PORT:-35600} bash scripts/test.sh tests/chaos_ha -s $(PYTEST_ARGS)

lint: install  ## ruff + mypy
	@uv run ruff check .
	@uv run mypy libs/common/src services/*/src tools/creditctl/src

bench: install  ## every bench/*.py (BENCH=name for one, ARGS=… to each)
	@bash scripts/bench.sh $(ARGS)

bench-instructions: install  ## instructions per event of a hot path, counted by callgrind (WHAT=credit|gateway|sweep, ARGS=…)
	@bash scripts/instructions.sh $(ARGS)

RATE ?= 1000
DURATION ?= 600
soak: install  ## balance events at RATE/s (1000) for DURATION s (600): latency, lag, memory
	@BENCH=soak bash scripts/bench.sh --rate $(RATE) --duration $(DURATION)

clean:  ## remove local stacks' data and caches (jars stay)
	@STACK=dev bash deploy/local/stack.sh reset || true
	@STACK=test bash deploy/local/stack.sh reset || true
	@rm -rf test-artifacts .pytest_cache .mypy_cache .ruff_cache
