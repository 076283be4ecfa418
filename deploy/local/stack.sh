#!/usr/bin/env bash
# No-Docker local stack for the credit-control platform: one single-node Kafka
# (KRaft, no ZooKeeper) and one PostgreSQL 15 cluster per STACK, run as plain
# processes from the repo's .local/<STACK>/ folder.
#
#   STACK=dev|test deploy/local/stack.sh VERB
#
# Verbs: start stop status env reset
#        kafka-start kafka-stop kafka-restart pg-start pg-stop pg-restart
#        topics [TOPIC]  consume TOPIC [N]  groups [GROUP]   (Kafka's console tools)
#
# Ports (override with KAFKA_PORT, KAFKA_CONTROLLER_PORT, PG_PORT):
#   dev : kafka 127.0.0.1:19092 (controller 19093), postgres 127.0.0.1:15432
#   test: kafka 127.0.0.1:29092 (controller 29093), postgres 127.0.0.1:25432
#
# See deploy/local/README.md for folders and troubleshooting.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

# STACK=ha is the production-shaped topology (three brokers, pg_auto_failover): its own
# script, so everything below stays the single-node stack (deploy/local/ha.sh, docs/scaling.md).
if [[ ${STACK:-} == ha ]]; then exec bash "$SCRIPT_DIR/ha.sh" "$@"; fi

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
STACK=${STACK:-dev}
case "$STACK" in
  dev)  DEF_KAFKA_PORT=19092 DEF_KAFKA_CONTROLLER_PORT=19093 DEF_PG_PORT=15432 ;;
  test) DEF_KAFKA_PORT=29092 DEF_KAFKA_CONTROLLER_PORT=29093 DEF_PG_PORT=25432 ;;
  *)    # Any other name works only when every port is given explicitly, so two
        # ad-hoc stacks can never silently share ports.
        DEF_KAFKA_PORT='' DEF_KAFKA_CONTROLLER_PORT='' DEF_PG_PORT='' ;;
esac
KAFKA_PORT=${KAFKA_PORT:-$DEF_KAFKA_PORT}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$DEF_KAFKA_CONTROLLER_PORT}
PG_PORT=${PG_PORT:-$DEF_PG_PORT}

# Where stacks live; STACK_ROOT can move them elsewhere (e.g. when the repo sits
# in a folder the postgres OS user cannot traverse, like /root).
STACK_ROOT=${STACK_ROOT:-$REPO_ROOT/.local}
STACK_DIR=$STACK_ROOT/$STACK
KAFKA_DATA=$STACK_DIR/kafka
PG_DATA=$STACK_DIR/pg
LOG_DIR=$STACK_DIR/logs
RUN_DIR=$STACK_DIR/run                       # postgres unix socket
LOCK_FILE=$STACK_ROOT/.$STACK.lock           # outside STACK_DIR so `reset` keeps it

KAFKA_PROPS=$STACK_DIR/server.properties
KAFKA_CLUSTER_ID_FILE=$STACK_DIR/kafka-cluster-id
KAFKA_PID_FILE=$LOG_DIR/kafka.pid
KAFKA_LOG=$LOG_DIR/kafka.log
KAFKA_LOG4J=$SCRIPT_DIR/kafka/log4j.properties
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
# Shared by all stacks: the jars do not depend on the stack.
KAFKA_CACHE=${KAFKA_CACHE:-$REPO_ROOT/.cache/kafka}
KAFKA_LIB=$KAFKA_CACHE/lib
KAFKA_LIB_MARKER=$KAFKA_LIB/.resolved        # holds the sha256 of the pom it came from
# Kafka's command-line tools (topics|consume|groups), apart from the broker's jars.
KAFKA_TOOLS_POM=$SCRIPT_DIR/kafka/tools-pom.xml
KAFKA_TOOLS_LIB=$KAFKA_CACHE/tools-lib
KAFKA_TOOLS_LOG4J=$SCRIPT_DIR/kafka/tools-log4j.properties
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

PG_LOG=$LOG_DIR/postgres.log
PG_EXT_PID_FILE=$LOG_DIR/postgres.pid        # written/removed by postgres itself (external_pid_file)
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}
PG_APP_USER=creditctl
PG_APP_PASSWORD=creditctl
PG_APP_DB=creditctl

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
log()  { printf '[stack %s] %s\n' "$STACK" "$*"; }
warn() { printf '[stack %s] WARNING: %s\n' "$STACK" "$*" >&2; }
die()  { printf '[stack %s] ERROR: %s\n' "$STACK" "$*" >&2; exit 1; }

is_root() { [[ $EUID -eq 0 ]]; }

# initdb/postgres refuse to run as root, so as root every postgres command runs
# as the `postgres` OS user. `cd /` avoids "could not change directory to /root".
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

check_ports() {
  local name port
  for name in KAFKA_PORT KAFKA_CONTROLLER_PORT PG_PORT; do
    port=${!name}
    [[ -n $port ]] || die "STACK='$STACK' is not dev/test: set KAFKA_PORT, KAFKA_CONTROLLER_PORT and PG_PORT"
    if ! [[ $port =~ ^[0-9]{1,5}$ ]] || (( 10#$port < 1 || 10#$port > 65535 )); then
      die "$name='$port' is not a valid port"
    fi
  done
  if [[ $KAFKA_PORT == "$KAFKA_CONTROLLER_PORT" || $KAFKA_PORT == "$PG_PORT" || $KAFKA_CONTROLLER_PORT == "$PG_PORT" ]]; then
    die "KAFKA_PORT, KAFKA_CONTROLLER_PORT and PG_PORT must differ ($KAFKA_PORT/$KAFKA_CONTROLLER_PORT/$PG_PORT)"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:$1. Uses bash's
# /dev/tcp (no nc on the machine); `timeout` guards against a hung connect.
port_open() {
  # shellcheck disable=SC2016  # $0 expands in the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# Best-effort description of who listens on a port, for error messages.
port_owner() {
  local out=''
  if command -v ss >/dev/null 2>&1; then
    out=$(ss -Hltnp "( sport = :$1 )" 2>/dev/null | sed -n 's/.*users:(\(.*\))$/\1/p' | head -n1 || true)
  fi
  printf '%s' "${out:-unknown process}"
}

# Fail with a message naming the port when another process already has it.
require_port_free() {
  local port=$1 what=$2
  if port_open "$port"; then
    die "port $port ($what) is already in use by another process: $(port_owner "$port"). \
Stop it, or pick other ports (KAFKA_PORT / KAFKA_CONTROLLER_PORT / PG_PORT)."
  fi
}

# A process counts as alive unless it is gone or a zombie: here PID 1 reaps
# orphans lazily, so a killed daemon can linger as <defunct> for a while.
proc_alive() {
  [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
  local stat state
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  state=${stat##*) }          # field after "(comm) "; comm may contain spaces
  state=${state%% *}
  [[ $state != Z && $state != X ]]
}
proc_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

ensure_stack_dirs() {
  mkdir -p "$STACK_DIR" "$LOG_DIR"
  if is_root; then
    # The postgres user must be able to reach its data dir through .local/<STACK>
    # and write its log + external pid file into logs/.
    chmod o+x "$STACK_ROOT" "$STACK_DIR"
    chown postgres:postgres "$LOG_DIR"
  fi
}

# Serialise mutating verbs per stack (e.g. two test runners calling `start`).
# fd 9 must not leak into long-lived children, hence `9>&-` on their launches.
take_lock() {
  mkdir -p "$STACK_ROOT"
  exec 9>"$LOCK_FILE"
  flock -w 180 9 || die "another stack.sh is still working on STACK=$STACK (lock $LOCK_FILE)"
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------
check_java() {
  command -v java >/dev/null 2>&1 || die "java not found: install a JDK/JRE 17+ (Debian: apt-get install -y openjdk-17-jre-headless)"
  local v major
  # Read the whole output first: `java | awk '{...; exit}'` can SIGPIPE java under pipefail.
  v=$(java -version 2>&1 || true)
  v=$(awk -F'"' '/version/ {print $2; exit}' <<<"$v")
  major=${v%%.*}
  [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$v")     # 1.8.0_x style
  [[ $major =~ ^[0-9]+$ ]] || die "cannot parse java version from: $(java -version 2>&1 | head -n1)"
  (( major >= 17 )) || die "java $v found, Kafka here needs java 17+"
}

# Resolve the broker jars once into .cache/kafka/lib (shared by all stacks).
# The marker holds the pom's hash, so editing the pom triggers a re-resolve.
kafka_ensure_jars() {
  local want
  want=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
  [[ -f $KAFKA_LIB_MARKER && $(cat "$KAFKA_LIB_MARKER") == "$want" ]] && return 0

  command -v mvn >/dev/null 2>&1 || die "mvn not found: it is needed once to fetch the Kafka jars (Debian: apt-get install -y maven)"
  mkdir -p "$KAFKA_CACHE"
  # Both stacks may start at once: only one of them downloads.
  (
    flock -w 600 8 || die "timed out waiting for another jar download ($KAFKA_CACHE/.lock)"
    [[ -f $KAFKA_LIB_MARKER && $(cat "$KAFKA_LIB_MARKER") == "$want" ]] && exit 0
    log "resolving Kafka jars with Maven into $KAFKA_LIB (one-off) ..."
    local tmp=$KAFKA_CACHE/lib.tmp.$$ t0=$SECONDS n
    rm -rf "$tmp"
    # Copy into a temp dir and swap, so a failed download never looks complete.
    if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies \
           -DoutputDirectory="$tmp" >"$KAFKA_CACHE/mvn.log" 2>&1 9>&-; then
      tail -n 30 "$KAFKA_CACHE/mvn.log" >&2
      rm -rf "$tmp"
      die "maven could not resolve the Kafka jars (full log: $KAFKA_CACHE/mvn.log)"
    fi
    n=$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)
    (( n > 0 )) || die "maven resolved no jars into $tmp"
    rm -rf "$KAFKA_LIB"
    mv "$tmp" "$KAFKA_LIB"
    printf '%s\n' "$want" >"$KAFKA_LIB_MARKER"
    log "resolved $n jars in $((SECONDS - t0))s"
  ) 8>"$KAFKA_CACHE/.lock"
}

# The console tools' jars once into .cache/kafka/tools-lib: only those the broker's folder
# lacks (one slf4j binding, one copy of each jar). The marker holds both poms' hashes.
kafka_ensure_tools_jars() {
  kafka_ensure_jars
  local want marker=$KAFKA_TOOLS_LIB/.resolved
  want=$(cat "$KAFKA_TOOLS_POM" "$KAFKA_POM" | sha256sum | cut -d' ' -f1)
  [[ -f $marker && $(cat "$marker") == "$want" ]] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found: it is needed once to fetch the Kafka tools (Debian: apt-get install -y maven)"
  (
    flock -w 600 8 || die "timed out waiting for another jar download ($KAFKA_CACHE/.lock)"
    [[ -f $marker && $(cat "$marker") == "$want" ]] && exit 0
    log "resolving Kafka's console tools with Maven into $KAFKA_TOOLS_LIB (one-off) ..."
    local tmp=$KAFKA_CACHE/tools-lib.tmp.$$ jar
    rm -rf "$tmp"
    if ! mvn -q -B -f "$KAFKA_TOOLS_POM" dependency:copy-dependencies \
           -DoutputDirectory="$tmp" >"$KAFKA_CACHE/mvn-tools.log" 2>&1 9>&-; then
      tail -n 30 "$KAFKA_CACHE/mvn-tools.log" >&2
      rm -rf "$tmp"
      die "maven could not resolve the Kafka tools (full log: $KAFKA_CACHE/mvn-tools.log)"
    fi
    for jar in "$tmp"/*.jar; do
      [[ -e $KAFKA_LIB/$(basename "$jar") ]] && rm -f "$jar"
    done
    [[ -n $(find "$tmp" -maxdepth 1 -name 'kafka-tools-*.jar') ]] || die "no kafka-tools jar in $tmp"
    rm -rf "$KAFKA_TOOLS_LIB"
    mv "$tmp" "$KAFKA_TOOLS_LIB"
    printf '%s\n' "$want" >"$marker"
  ) 8>"$KAFKA_CACHE/.lock"
}

# Run a console tool against this stack's broker (which must be running).
kafka_tool() {
  kafka_ensure_tools_jars
  port_open "$KAFKA_PORT" || die "kafka is not running on 127.0.0.1:$KAFKA_PORT (start it: STACK=$STACK $0 start)"
  java -cp "$KAFKA_LIB/*:$KAFKA_TOOLS_LIB/*" -Dlog4j.configuration="file:$KAFKA_TOOLS_LOG4J" "$@"
}

# topics: the topics (no internal ones); topics NAME: its partitions, leaders and configs.
kafka_topics() {
  if [[ -n ${1:-} ]]; then
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --describe --topic "$1"
  else
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --list --exclude-internal
  fi
}

# consume TOPIC [N]: the first N (10) messages from the beginning, one line each with its
# partition, offset, time, key and headers; stops after N or 5 s without a message
# (CONSUME_TIMEOUT_MS). Reads as the group `creditctl-inspect`, which never commits, so no
# service's position moves and every call starts from the beginning again.
kafka_consume() {
  [[ -n ${1:-} ]] || die "usage: $0 consume TOPIC [N]"
  local n=${2:-10}
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not '$n'"
  kafka_topics | grep -qxF -- "$1" || die "no topic '$1' on 127.0.0.1:$KAFKA_PORT (list them: $0 topics)"
  kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --topic "$1" --from-beginning \
    --max-messages "$n" --timeout-ms "${CONSUME_TIMEOUT_MS:-5000}" \
    --property print.partition=true --property print.offset=true \
    --property print.timestamp=true --property print.key=true \
    --property print.headers=true --group creditctl-inspect \
    --consumer-property enable.auto.commit=false \
    2> >(grep -v -e 'TimeoutException' -e 'terminating consumer process' -e '^\s*at ' >&2)
}

# groups: the consumer groups; groups NAME: its members and, per partition, the committed
# offset, the end offset and the lag.
kafka_groups() {
  if [[ -n ${1:-} ]]; then
    kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --describe --group "$1"
  else
    kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list
  fi
}

kafka_java() {  # run a Kafka main class with the cached jars (short-lived tools)
  java -cp "$KAFKA_LIB/*" -Dlog4j.configuration="file:$KAFKA_LOG4J" "$@"
}

# Regenerated on every start so port overrides take effect; node/cluster
# identity lives in the data dir and does not depend on this file.
kafka_write_config() {
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/stack.sh for STACK=$STACK -- edits are overwritten on start.
# Single-node KRaft: this one process is both broker and (the only) controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT

# Loopback only.
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT

log.dirs=$KAFKA_DATA

# One broker: every replication factor / ISR must be 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# Services create their own topics; a typo must fail instead of silently creating one.
auto.create.topics.enable=false
num.partitions=6

# Tests: consumer groups should not wait 3 s for more members before the first rebalance.
group.initial.rebalance.delay.ms=0

# After a kill -9 the restarted node must wait for its own previous broker
# registration to expire (DUPLICATE_BROKER_REGISTRATION) before it serves
# clients: 10-20 s with the 9 s default session. Broker and controller share this
# JVM, so a short session is safe and makes fault-test restarts faster.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=3000
EOF
}

# Format the storage once per stack; reformatting would wipe the topics.
kafka_format_storage() {
  if [[ -f $KAFKA_DATA/meta.properties ]]; then
    return 0
  fi
  local cid
  if [[ -s $KAFKA_CLUSTER_ID_FILE ]]; then
    cid=$(cat "$KAFKA_CLUSTER_ID_FILE")
  else
    cid=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n1 || true)
    [[ -n $cid ]] || die "kafka.tools.StorageTool random-uuid printed no cluster id"
    printf '%s\n' "$cid" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  log "formatting Kafka storage in $KAFKA_DATA (cluster id $cid)"
  mkdir -p "$KAFKA_DATA"
  local flog=$LOG_DIR/kafka-format.log
  if kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" >"$flog" 2>&1; then
    return 0
  fi
  # Seen once, not reproduced: StorageTool died in argument parsing (argparse4j
  # MissingResourceException) while the other stack's broker was booting. Nothing
  # is written in that case, so one retry is safe.
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    mv -f "$flog" "$flog.failed"
    warn "formatting Kafka storage failed ($(grep -m1 -E 'Exception|Error' "$flog.failed" || echo 'see log')), retrying once; first attempt's log: $flog.failed"
    if kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" >"$flog" 2>&1; then
      return 0
    fi
  fi
  cat "$flog" >&2
  die "formatting Kafka storage failed (log: $flog)"
}

# Sets KAFKA_STATE to running|stale|stopped and KAFKA_PID_VAL.
# "Ours" = a live kafka.Kafka process started with this stack's server.properties
# (guards against a recycled pid and against the other stack's broker).
kafka_probe() {
  KAFKA_PID_VAL=''
  if [[ -f $KAFKA_PID_FILE ]]; then
    KAFKA_PID_VAL=$(tr -dc '0-9' <"$KAFKA_PID_FILE")
    if proc_alive "$KAFKA_PID_VAL" && [[ $(proc_cmdline "$KAFKA_PID_VAL") == *"kafka.Kafka $KAFKA_PROPS"* ]]; then
      KAFKA_STATE=running
    else
      KAFKA_STATE=stale
    fi
    return 0
  fi
  # No pid file, but maybe our broker is running anyway (pid file deleted by hand):
  # adopt it instead of failing on "port in use".
  local orphan=''
  if command -v pgrep >/dev/null 2>&1; then
    orphan=$(pgrep -f -- "kafka\.Kafka $KAFKA_PROPS\$" | head -n1 || true)
  fi
  if [[ -n $orphan ]]; then
    KAFKA_PID_VAL=$orphan
    KAFKA_STATE=running
    mkdir -p "$LOG_DIR"
    printf '%s\n' "$orphan" >"$KAFKA_PID_FILE"
    warn "kafka was running without a pid file (pid $orphan): pid file rewritten"
  else
    KAFKA_STATE=stopped
  fi
}

kafka_wait_ready() {
  local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while (( SECONDS < deadline )); do
    if ! proc_alive "$pid"; then
      tail -n 40 "$KAFKA_LOG" >&2 || true
      die "kafka (pid $pid) exited during startup (log: $KAFKA_LOG)"
    fi
    # The port opens slightly before the broker is usable; the log line marks
    # the end of KafkaRaftServer startup.
    if port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  tail -n 40 "$KAFKA_LOG" >&2 || true
  die "kafka (pid $pid) did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (log: $KAFKA_LOG)"
}

kafka_start() {
  check_ports
  kafka_probe
  case $KAFKA_STATE in
    running)
      log "kafka already running (pid $KAFKA_PID_VAL, 127.0.0.1:$KAFKA_PORT)"
      kafka_wait_ready "$KAFKA_PID_VAL"
      return 0 ;;
    stale)
      log "kafka: stale pid file $KAFKA_PID_FILE (pid ${KAFKA_PID_VAL:-?} is not running), removing"
      rm -f "$KAFKA_PID_FILE" ;;
  esac
  require_port_free "$KAFKA_PORT" "kafka broker"
  require_port_free "$KAFKA_CONTROLLER_PORT" "kafka controller"
  check_java
  kafka_ensure_jars
  ensure_stack_dirs
  kafka_write_config
  kafka_format_storage

  # Keep the previous run's log for post-mortems; the new run gets a fresh file
  # (kafka_wait_ready greps it for the "started" line).
  [[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  log "starting kafka on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), log $KAFKA_LOG"
  local t0=$SECONDS
  # setsid -f: own session, so a Ctrl-C / SIGINT to the caller's process group
  # (e.g. an interrupted pytest) does not take the broker down with it. The
  # wrapper bash writes its own pid and then execs java, so the pid file holds
  # the JVM's pid.
  # shellcheck disable=SC2086,SC2016  # KAFKA_HEAP_OPTS is a list of flags; $$/$0/$@ are the inner bash's
  setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID_FILE" \
    nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$KAFKA_LOG4J" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >"$KAFKA_LOG" 2>&1 9>&-

  local _ pid=''
  for _ in {1..50}; do
    [[ -s $KAFKA_PID_FILE ]] && pid=$(tr -dc '0-9' <"$KAFKA_PID_FILE") && [[ -n $pid ]] && break
    sleep 0.1
  done
  [[ -n $pid ]] || die "kafka launcher did not write $KAFKA_PID_FILE"
  kafka_wait_ready "$pid"
  log "kafka ready (pid $pid, 127.0.0.1:$KAFKA_PORT) in $((SECONDS - t0))s"
}

kafka_stop() {
  kafka_probe
  case $KAFKA_STATE in
    stopped) log "kafka not running"; return 0 ;;
    stale)
      log "kafka: stale pid file $KAFKA_PID_FILE (pid ${KAFKA_PID_VAL:-?} is not running), removing"
      rm -f "$KAFKA_PID_FILE"; return 0 ;;
  esac
  local pid=$KAFKA_PID_VAL deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  log "stopping kafka (pid $pid) ..."
  # SIGTERM = controlled shutdown: flushes logs and writes the clean-shutdown
  # marker, so the next start skips log recovery.
  kill -TERM "$pid" 2>/dev/null || true
  while proc_alive "$pid" && (( SECONDS < deadline )); do sleep 0.5; done
  if proc_alive "$pid"; then
    warn "kafka (pid $pid) still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while proc_alive "$pid"; do sleep 0.2; done
  fi
  rm -f "$KAFKA_PID_FILE"
  log "kafka stopped"
}

kafka_status_line() {
  kafka_probe
  case $KAFKA_STATE in
    running)
      if port_open "$KAFKA_PORT"; then
        printf 'kafka     running  pid %s  port %s (controller %s)\n' "$KAFKA_PID_VAL" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
        return 0
      fi
      printf 'kafka     running  pid %s  port %s NOT ANSWERING (starting? see %s)\n' "$KAFKA_PID_VAL" "$KAFKA_PORT" "$KAFKA_LOG" ;;
    stale)   printf 'kafka     stale    pid file %s names pid %s, which is not running\n' "$KAFKA_PID_FILE" "${KAFKA_PID_VAL:-?}" ;;
    stopped) printf 'kafka     stopped  (port %s)\n' "$KAFKA_PORT" ;;
  esac
  return 1
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
# Sets PG_BIN to the folder holding initdb/pg_ctl/postgres, installing
# Debian's postgresql-15 when it is missing and we are root.
pg_find_bin() {
  local cand=''
  if [[ -n ${PG_BIN:-} ]]; then
    [[ -x $PG_BIN/initdb ]] || die "PG_BIN=$PG_BIN has no initdb"
    return 0
  fi
  if command -v pg_config >/dev/null 2>&1; then
    cand=$(pg_config --bindir 2>/dev/null || true)
  fi
  [[ -n $cand && -x $cand/initdb ]] || cand=/usr/lib/postgresql/15/bin
  if [[ ! -x $cand/initdb ]]; then
    is_root || die "PostgreSQL server binaries not found (no initdb). Install them: sudo apt-get install -y postgresql-15"
    log "PostgreSQL server binaries missing: apt-get install -y postgresql-15 ..."
    # Note: Debian's package may also create/start its own 'main' cluster on 5432;
    # this stack never uses it.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    cand=/usr/lib/postgresql/15/bin
    [[ -x $cand/initdb ]] || die "postgresql-15 installed but $cand/initdb is missing"
  fi
  PG_BIN=$cand
}

# unix sockets have a ~107 byte path limit; a deep checkout would overflow it.
pg_socket_dir() {
  local sock=$RUN_DIR/.s.PGSQL.$PG_PORT
  if (( ${#sock} > 100 )); then
    printf '/tmp/creditctl-%s-pg' "$STACK"
  else
    printf '%s' "$RUN_DIR"
  fi
}

# Sets PG_STATE to running|stale|stopped and PG_PID_VAL from postgres' own
# postmaster.pid (the authoritative lock file).
pg_probe() {
  PG_PID_VAL=''
  PG_STATE=stopped
  [[ -f $PG_DATA/postmaster.pid ]] || return 0
  PG_PID_VAL=$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9')
  PG_STATE=stale
  proc_alive "$PG_PID_VAL" || return 0
  # The postmaster chdirs into its data dir: that tells our cluster from a
  # recycled pid or another cluster.
  local cwd
  cwd=$(readlink "/proc/$PG_PID_VAL/cwd" 2>/dev/null || true)
  if [[ $cwd == "$(cd "$PG_DATA" && pwd -P)" ]]; then
    PG_STATE=running
  elif [[ -z $cwd && $(cat "/proc/$PG_PID_VAL/comm" 2>/dev/null) == postgres ]]; then
    PG_STATE=running   # cannot read cwd (not root, other user): trust the name
  fi
}

# After a crash (kill -9) postgres leaves its lock files behind. It would clean
# postmaster.pid itself, but not while the dead postmaster lingers as a zombie
# (kill(pid, 0) still succeeds), and the socket lock file has the same problem.
# pg_probe has established that our postmaster is dead, so remove them all.
pg_clear_stale() {
  log "postgres: stale pid file $PG_DATA/postmaster.pid (pid ${PG_PID_VAL:-?} is not running), removing"
  local sockdir
  sockdir=$(pg_socket_dir)
  rm -f "$PG_DATA/postmaster.pid" "$PG_EXT_PID_FILE" \
        "$sockdir/.s.PGSQL.$PG_PORT" "$sockdir/.s.PGSQL.$PG_PORT.lock"
}

pg_init() {
  [[ -f $PG_DATA/PG_VERSION ]] && return 0
  if [[ -d $PG_DATA ]] && [[ -n $(ls -A "$PG_DATA" 2>/dev/null) ]]; then
    die "$PG_DATA exists but is not an initialised cluster; run 'STACK=$STACK $0 reset' (deletes this stack's data)"
  fi
  # postgres must own (and alone access) its data dir.
  mkdir -p "$PG_DATA"
  chmod 700 "$PG_DATA"
  is_root && chown postgres:postgres "$PG_DATA"
  if is_root && ! as_pg test -x "$STACK_DIR"; then
    die "the postgres OS user cannot reach $STACK_DIR (check the permissions of its parent folders, or set STACK_ROOT to e.g. /var/tmp/creditctl-stacks)"
  fi
  local locale=C
  grep -qiE '^c\.utf-?8$' <<<"$(locale -a 2>/dev/null || true)" && locale=C.UTF-8
  log "initdb $PG_DATA (UTF8, locale $locale, collation C)"
  # Collation C: text compares with memcmp. C.UTF-8 sorts the same (code points are UTF-8's
  # byte order) but PostgreSQL 15 compares it through strcoll (docs/benchmarks.md); the
  # character classes (upper/lower, regular expressions) stay the locale's.
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale="$locale" \
        --lc-collate=C --auth-local=trust --auth-host=scram-sha-256 \
        >"$LOG_DIR/initdb.log" 2>&1; then
    cat "$LOG_DIR/initdb.log" >&2
    rm -rf "$PG_DATA"   # so the next start retries from scratch
    die "initdb failed (log: $LOG_DIR/initdb.log)"
  fi
  # Our settings live in stack.conf (rewritten on every start); hook it in once.
  printf "\n# Local stack settings (deploy/local/stack.sh)\ninclude = 'stack.conf'\n" >>"$PG_DATA/postgresql.conf"
}

# The buffer pool: a quarter of the machine's memory, at most 2 GB, at least 128 MB (the
# usual start for a server of its own). The month-end sweep's working set at 1,000,000
# products (their rows, the decisions, the account positions, their indexes) then stays in
# it: with 256 MB the backends wrote dirty pages out and read them back through the
# kernel's page cache in the middle of the sweep (docs/benchmarks.md, twenty-second
# session: the sweep 11.1 → 9.9 s, faster in every pair). PostgreSQL touches the pages as
# it uses them: a test stack's small databases take no more memory than before.
pg_default_shared_buffers() {
  local kb
  kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || true)
  [[ $kb =~ ^[0-9]+$ ]] || { echo 256MB; return; }
  local mb=$((kb / 1024 / 4))
  ((mb > 2048)) && mb=2048
  ((mb < 128)) && mb=128
  echo "${mb}MB"
}

# Rewritten on every start so port / socket changes take effect.
pg_write_config() {
  local sockdir=$1
  cat >"$PG_DATA/stack.conf" <<EOF
# Generated by deploy/local/stack.sh for STACK=$STACK -- edits are overwritten on start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
# Own socket folder: /var/run/postgresql may be missing and is shared by all clusters.
unix_socket_directories = '$sockdir'
external_pid_file = '$PG_EXT_PID_FILE'
max_connections = 200
shared_buffers = ${PG_SHARED_BUFFERS:-$(pg_default_shared_buffers)}
# The WAL writer empties the WAL buffers every 10 ms instead of every 200: the sweep's two
# lanes write ~670 MB of WAL in ~10 s, and at 200 ms its backends found the buffers full
# ~35,000 times a sweep and wrote them out themselves, waiting on each other
# (LWLock:WALWrite); at 10 ms never, and the sweep ran faster in every pair, the chain no
# slower (docs/benchmarks.md, twenty-second session). Idle, it hibernates after half a
# second of nothing to write (then wakes every 250 ms, or when a commit needs it).
wal_writer_delay = 10ms
# Sized for the month-end sweep's write burst (docs/benchmarks.md, eleventh session): with
# max_wal_size 1GB a 1,000,000-product sweep checkpointed every ~10 s ("checkpoints are
# occurring too frequently"), and after each checkpoint the first change to a page costs a
# full-page image. Smaller on a small disk: PG_MAX_WAL_SIZE=1GB.
max_wal_size = ${PG_MAX_WAL_SIZE:-8GB}
# Full-page images compressed: after each checkpoint the first change to a page logs the whole
# page, and commits wait for that WAL (in a 10-minute soak the minute after the checkpoint
# had 107 SMS over 250 ms without it, 1 with it: docs/benchmarks.md, twelfth session).
wal_compression = lz4
# Kept ON on purpose: crash/fault tests must see real durability.
fsync = on
synchronous_commit = on
# Where the database's time goes, per statement (SELECT … FROM pg_stat_statements as the
# superuser after CREATE EXTENSION pg_stat_statements): how the benches were analysed.
shared_preload_libraries = 'pg_stat_statements'
log_line_prefix = '%m [%p] %q%u@%d '
# Settings to try without editing this file (lines of name = value), e.g. for a bench run.
${PG_EXTRA_CONF:-}
EOF
  cat >"$PG_DATA/pg_hba.conf" <<EOF
# Generated by deploy/local/stack.sh -- edits are overwritten on start.
# TYPE  DATABASE  USER  ADDRESS        METHOD
# Admin access over the stack's own socket folder (mode 0700, postgres/root only).
local   all       all                  trust
# Applications: password over loopback TCP.
host    all       all   127.0.0.1/32   scram-sha-256
EOF
  if is_root; then
    chown postgres:postgres "$PG_DATA/stack.conf" "$PG_DATA/pg_hba.conf"
  fi
  chmod 600 "$PG_DATA/stack.conf" "$PG_DATA/pg_hba.conf"
}

pg_psql_admin() {  # psql as superuser over the stack's socket
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(pg_socket_dir)" -p "$PG_PORT" -U postgres -d postgres "$@"
}

# Application role + database, created only when missing.
pg_bootstrap_db() {
  if [[ -z $(pg_psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_APP_USER'") ]]; then
    log "creating role $PG_APP_USER"
    pg_psql_admin -c "CREATE ROLE $PG_APP_USER LOGIN CREATEDB PASSWORD '$PG_APP_PASSWORD'"
  fi
  if [[ -z $(pg_psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_APP_DB'") ]]; then
    log "creating database $PG_APP_DB"
    pg_psql_admin -c "CREATE DATABASE $PG_APP_DB OWNER $PG_APP_USER"
  fi
}

pg_wait_ready() {
  local deadline=$((SECONDS + PG_START_TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; do
    (( SECONDS < deadline )) || die "postgres did not become ready on 127.0.0.1:$PG_PORT within ${PG_START_TIMEOUT}s (log: $PG_LOG)"
    sleep 0.5
  done
}

pg_start() {
  check_ports
  pg_find_bin
  pg_probe
  case $PG_STATE in
    running)
      log "postgres already running (pid $PG_PID_VAL, 127.0.0.1:$PG_PORT)"
      pg_wait_ready
      pg_bootstrap_db
      return 0 ;;
    stale) pg_clear_stale ;;
    stopped)
      # No postmaster.pid means no server on this data dir; a socket lock file
      # left by a crash would still make postgres refuse to start.
      local lock
      lock="$(pg_socket_dir)/.s.PGSQL.$PG_PORT.lock"
      if [[ -f $lock ]]; then
        log "postgres: removing leftover socket lock $lock"
        rm -f "$lock" "${lock%.lock}"
      fi ;;
  esac
  require_port_free "$PG_PORT" "postgres"
  ensure_stack_dirs
  pg_init

  local sockdir
  sockdir=$(pg_socket_dir)
  mkdir -p "$sockdir"
  chmod 700 "$sockdir"
  is_root && chown postgres:postgres "$sockdir"
  pg_write_config "$sockdir"

  log "starting postgres on 127.0.0.1:$PG_PORT, log $PG_LOG"
  local t0=$SECONDS
  local server=()
  [[ -n ${PG_CALLGRIND_DIR:-} ]] && server=(-p "$(pg_callgrind_wrapper)")
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" -s \
      "${server[@]}" start 9>&-; then
    tail -n 30 "$PG_LOG" >&2 || true
    die "postgres failed to start (log: $PG_LOG)"
  fi
  pg_wait_ready
  pg_bootstrap_db
  pg_probe
  log "postgres ready (pid $PG_PID_VAL, 127.0.0.1:$PG_PORT) in $((SECONDS - t0))s"
}

# PG_CALLGRIND_DIR=<dir>: the server runs under valgrind's callgrind, every process counted,
# each writing <dir>/cg.<pid> when it exits (scripts/instructions.sh WHAT=sweep: a backend's
# instructions for one statement; on this VM timings vary by ±15 %, counts by far less).
pg_callgrind_wrapper() {
  command -v valgrind >/dev/null 2>&1 || die "PG_CALLGRIND_DIR needs valgrind (apt-get install valgrind)"
  mkdir -p "$PG_CALLGRIND_DIR"
  is_root && chown postgres:postgres "$PG_CALLGRIND_DIR"
  local wrapper=$STACK_DIR/postgres-under-callgrind
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --trace-children=yes -q --callgrind-out-file=%s/cg.%%p %s/postgres "$@"\n' \
    "$PG_CALLGRIND_DIR" "$PG_BIN" >"$wrapper"
  chmod 755 "$wrapper"
  printf '%s' "$wrapper"
}

pg_stop() {
  pg_probe
  case $PG_STATE in
    stopped) log "postgres not running"; return 0 ;;
    stale) pg_clear_stale; return 0 ;;
  esac
  pg_find_bin
  log "stopping postgres (pid $PG_PID_VAL) ..."
  # fast = roll back open transactions, then a clean checkpointed shutdown.
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 -s stop; then
    warn "fast shutdown timed out, trying immediate (next start runs crash recovery)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 -s stop
  fi
  log "postgres stopped"
}

pg_status_line() {
  pg_probe
  case $PG_STATE in
    running)
      if port_open "$PG_PORT"; then
        printf 'postgres  running  pid %s  port %s\n' "$PG_PID_VAL" "$PG_PORT"
        return 0
      fi
      printf 'postgres  running  pid %s  port %s NOT ANSWERING (see %s)\n' "$PG_PID_VAL" "$PG_PORT" "$PG_LOG" ;;
    stale)   printf 'postgres  stale    pid file %s names pid %s, which is not running\n' "$PG_DATA/postmaster.pid" "${PG_PID_VAL:-?}" ;;
    stopped) printf 'postgres  stopped  (port %s)\n' "$PG_PORT" ;;
  esac
  return 1
}

# ---------------------------------------------------------------------------
# Whole stack
# ---------------------------------------------------------------------------
print_env() {
  check_ports
  cat <<EOF
export KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export DATABASE_URL=postgresql+asyncpg://$PG_APP_USER:$PG_APP_PASSWORD@127.0.0.1:$PG_PORT/$PG_APP_DB
export PG_PORT=$PG_PORT
export KAFKA_PORT=$KAFKA_PORT
EOF
}

stack_status() {
  local rc=0
  kafka_status_line || rc=3
  pg_status_line || rc=3
  return $rc
}

stack_reset() {
  kafka_stop
  pg_stop
  # Paranoia before rm -rf: STACK_DIR must be a real sub-folder of STACK_ROOT.
  [[ -n $STACK && $STACK != */* && $STACK != . && $STACK != .. ]] || die "refusing to delete for STACK='$STACK'"
  if [[ -d $STACK_DIR ]]; then
    rm -rf "$STACK_DIR"
    log "deleted $STACK_DIR"
  fi
  [[ -d /tmp/creditctl-$STACK-pg ]] && rm -rf "/tmp/creditctl-$STACK-pg"
  return 0
}

usage() {
  cat <<EOF
usage: STACK=dev|test $0 VERB

  start          start kafka and postgres (no-op for what already runs)
  stop           stop both (harmless when not running)
  status         one line per component; exit 0 when both run, 3 otherwise
  env            print shell exports (eval "\$(STACK=$STACK $0 env)")
  reset          stop and delete this stack's data (.local/$STACK)
  kafka-start | kafka-stop | kafka-restart
  pg-start    | pg-stop    | pg-restart
  topics [TOPIC]     list the topics, or describe one (partitions, leaders, configs)
  consume TOPIC [N]  print the first N (10) messages: partition, offset, time, key, headers
  groups [GROUP]     list the consumer groups, or one's offsets and lag per partition

env: STACK (dev|test, default dev), KAFKA_PORT, KAFKA_CONTROLLER_PORT, PG_PORT,
     STACK_ROOT (default <repo>/.local), KAFKA_HEAP_OPTS (default -Xms256m -Xmx1g)
EOF
}

main() {
  local verb=${1:-}
  case $verb in
    start)         take_lock; kafka_start; pg_start; stack_status || true ;;
    stop)          take_lock; kafka_stop; pg_stop ;;
    status)        check_ports; stack_status ;;
    env)           print_env ;;
    reset)         take_lock; stack_reset ;;
    kafka-start)   take_lock; kafka_start ;;
    kafka-stop)    take_lock; kafka_stop ;;
    kafka-restart) take_lock; kafka_stop; kafka_start ;;
    pg-start)      take_lock; pg_start ;;
    pg-stop)       take_lock; pg_stop ;;
    pg-restart)    take_lock; pg_stop; pg_start ;;
    kafka-jars)    kafka_ensure_jars ;;   # for deploy/local/ha.sh: the one-off Maven download
    topics)        shift; kafka_topics "$@" ;;
    consume)       shift; kafka_consume "$@" ;;
    groups)        shift; kafka_groups "$@" ;;
    -h|--help|help) usage ;;
    '')            usage >&2; exit 2 ;;
    *)             printf 'unknown verb: %s\n\n' "$verb" >&2; usage >&2; exit 2 ;;
  esac
}

main "$@"
