#!/usr/bin/env bash
# make bench: against the test stack (started if needed, stopped again if we started it).
set -euo pipefail
cd "$(dirname "$0")/.."
export STACK=${STACK:-test}
stack=deploy/local/stack.sh
started=0
if ! bash "$stack" status >/dev/null 2>&1; then bash "$stack" start; started=1; fi
cleanup() { if [[ $started == 1 ]]; then bash "$stack" stop || true; fi; }
trap cleanup EXIT
eval "$(bash "$stack" env)"
export CREDITCTL_DATABASE_URL="$DATABASE_URL" CREDITCTL_KAFKA_BOOTSTRAP="$KAFKA_BOOTSTRAP"
for m in billing_events credit_control notifier gateway_adapter; do
  BILLING_DATABASE_URL=$DATABASE_URL CREDIT_DATABASE_URL=$DATABASE_URL \
  NOTIFIER_DATABASE_URL=$DATABASE_URL GATEWAY_DATABASE_URL=$DATABASE_URL \
    uv run python -m "$m" migrate >/dev/null
done
# BENCH=name runs only bench/<name>.py; ARGS go to every script run. BENCH_RUNNER: what
# runs it instead of `uv run python` (scripts/instructions.sh: valgrind), split on spaces.
if [[ -n ${BENCH:-} ]]; then
  ${BENCH_RUNNER:-uv run python} "bench/$BENCH.py" "$@"
else
  for script in bench/*.py; do
    [[ $(basename "$script") == _* ]] && continue  # a module of another bench, not a bench
    echo "== $script"
    uv run python "$script" "$@"
  done
fi
