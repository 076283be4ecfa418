#!/usr/bin/env bash
# make bench-instructions: credit-control's instructions per balance event (decode + inbox
# claim + batch handler, no Kafka: the part `credit_bench --cpu-only` times), counted by
# valgrind's callgrind next to the bench's ceiling consumer. On this VM the same timed run
# varies by ±15 %; the count varies by ±0.02 %, so a change worth a few per cent shows.
# ARGS go to credit_bench (e.g. --cpu-events 5000 --repeat 1). ~1 minute per 5,000 events.
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
# The venv's own interpreter: valgrind must run Python itself, not a launcher that execs it.
export PYTHONHASHSEED=0  # the same set and dict orders each run
python=$(uv run python -c 'import sys; print(sys.executable)')
BENCH=credit_bench BENCH_RUNNER="valgrind --tool=callgrind --instr-atstart=no \
--callgrind-out-file=$out/cg -q $python" bash scripts/bench.sh --cpu-only --cpu-events 5000 --repeat 1 --instructions "$out/cg" "$@"
