#!/usr/bin/env bash
# make bench-instructions: instructions per event of a hot path, counted by valgrind's
# callgrind around exactly the part the bench times. On this VM the same timed run varies by
# ±15 %; the count varies by ±0.02 %, so a change worth a few per cent shows.
#   WHAT=credit (default): credit-control per balance event (decode + inbox claim + batch
#     handler, no Kafka: `credit_bench --cpu-only`), next to the bench's ceiling consumer;
#     ~30 s per 5,000 events.
#   WHAT=gateway: the gateway's accept path per command (`gateway_bench --only cpu`, batches
#     of 30 and of 1,000).
#   WHAT=sweep: PostgreSQL's instructions for one chunk of the month-end sweep, per decision
#     (bench/sweep_instructions.py; the server itself under callgrind).
# ARGS go to the bench (e.g. --cpu-events 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null 2>&1; then
  if [[ $EUID -ne 0 ]]; then
    echo "instructions: valgrind is missing; install the Debian package valgrind" >&2; exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
out=$(mktemp -d)
# CALLGRIND_KEEP=1 keeps the counts by function (callgrind_annotate <file>) in $out.
if [[ -z ${CALLGRIND_KEEP:-} ]]; then trap 'rm -rf "$out"' EXIT; fi
export PYTHONHASHSEED=0  # the same set and dict orders each run
# The venv's own interpreter: valgrind must run Python itself, not a launcher that execs it.
python=$(uv run python -c 'import sys; print(sys.executable)')
export BENCH_RUNNER="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/cg -q $python"
# WHAT=sweep: the server's side. A PostgreSQL of its own (STACK=callgrind, port 45432: the ha
# stack has 35000-35999, docs/scaling.md): started normally to make the template database
# once, then again under callgrind, every process counted (stack.sh PG_CALLGRIND_DIR);
# bench/sweep_instructions.py counts the backend that runs one chunk of the month-end sweep.
# ~1 minute for the default 2,000-product chunk.
sweep_instructions() {
  export STACK=callgrind PG_PORT=${CALLGRIND_PG_PORT:-45432} KAFKA_PORT=49092 \
    KAFKA_CONTROLLER_PORT=49093
  local stack=deploy/local/stack.sh dumps=$PWD/.local/callgrind/dumps
  bash "$stack" pg-start
  eval "$(bash "$stack" env)"
  export CREDITCTL_DATABASE_URL=$DATABASE_URL
  uv run python bench/sweep_instructions.py --prepare "$@"
  bash "$stack" pg-stop
  rm -rf "$dumps"
  # Expanded now: the function's locals are gone when the trap runs.
  trap "bash '$stack' pg-stop; [[ -n \${CALLGRIND_KEEP:-} ]] || rm -rf '$dumps' '$out'" EXIT
  PG_CALLGRIND_DIR=$dumps PG_START_TIMEOUT=300 bash "$stack" pg-start
  "$python" bench/sweep_instructions.py --dumps "$dumps" ${CALLGRIND_KEEP:+--keep} "$@"
}
case ${WHAT:-credit} in
  credit) BENCH=credit_bench bash scripts/bench.sh --cpu-only --cpu-events 5000 --repeat 1 \
            --instructions "$out/cg" "$@" ;;
  gateway) BENCH=gateway_bench bash scripts/bench.sh --only cpu --runs 1 \
             --instructions "$out/cg" "$@" ;;
  sweep) sweep_instructions "$@" ;;
  *) echo "instructions: WHAT is credit, gateway or sweep, not '$WHAT'" >&2; exit 2 ;;
esac
