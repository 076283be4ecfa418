#!/usr/bin/env bash
# make test: start the test stack unless it is up, run every test, stop what we started.
set -euo pipefail
cd "$(dirname "$0")/.."
export STACK=${STACK:-test}
stack=deploy/local/stack.sh

started=0
if ! bash "$stack" status >/dev/null 2>&1; then
  bash "$stack" start
  started=1
fi
cleanup() { if [[ $started == 1 ]]; then bash "$stack" stop || true; fi; }
trap cleanup EXIT

eval "$(bash "$stack" env)"
export CREDITCTL_DATABASE_URL="$DATABASE_URL" CREDITCTL_KAFKA_BOOTSTRAP="$KAFKA_BOOTSTRAP"
export CREDITCTL_REQUIRE_STACK=1
uv run pytest "$@"
