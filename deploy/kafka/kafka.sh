#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) for local runs and tests.
# Needs only java (17+) and mvn on PATH: the broker jars are resolved from Maven Central
# through deploy/kafka/pom.xml, no Kafka distribution and no Docker.
#
#   deploy/kafka/kafka.sh start [--fresh]   start (or reuse) the broker; --fresh wipes its data first
#   deploy/kafka/kafka.sh stop              stop it (safe when it is not running)
#   deploy/kafka/kafka.sh status            exit 0 and print the bootstrap address when running
#   deploy/kafka/kafka.sh jars              only resolve the jars (deploy/kafka/cluster.sh runs from them)
#
# Environment:
#   KAFKA_PORT      client port, PLAINTEXT (default 19092); the controller listens on KAFKA_PORT+1
#   KAFKA_SASL_PORT client port with SASL_PLAINTEXT authentication (default KAFKA_PORT+2), mechanisms
#                   PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, one user for all three:
#   KAFKA_LOCAL_SASL_USER, KAFKA_LOCAL_SASL_PASSWORD   that user (default vpa / vpa-secret); the
#                   SCRAM credentials are written when the storage is formatted
#   KAFKA_HOME_DIR  working folder (default <repo>/.cache/kafka):
#                     libs/            broker jars (resolved once; again when pom.xml changes)
#                     server.properties, kafka.pid
#                     data/kraft/      log.dirs (topics, metadata log)
#                     data/logs/       server.log (INFO+), console.log (WARN+ and JVM output);
#                                      the previous start's logs are kept as *.log.1
#                     maven.log        output of the last jar resolution
#   KAFKA_HEAP_OPTS JVM heap options (default -Xms256m -Xmx512m)
#   KAFKA_START_TIMEOUT seconds to wait for the broker to answer (default 90)
#
# `start` prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT, KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:SASL_PORT,
# KAFKA_LIBS (the jars) and KAFKA_LOG_DIRS (the broker's data) on stdout (progress goes to stderr).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

KAFKA_PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="$((KAFKA_PORT + 1))"
SASL_PORT="${KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}"
SASL_USER="${KAFKA_LOCAL_SASL_USER:-vpa}"
SASL_PASSWORD="${KAFKA_LOCAL_SASL_PASSWORD:-vpa-secret}"
SASL_MECHANISMS="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$REPO_ROOT/.cache/kafka}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
START_TIMEOUT_S="${KAFKA_START_TIMEOUT:-90}"

POM="$SCRIPT_DIR/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/log4j2.yaml"
LIBS_DIR="$KAFKA_HOME_DIR/libs"
LIBS_STAMP="$KAFKA_HOME_DIR/libs.pom.sha256"
DATA_DIR="$KAFKA_HOME_DIR/data"
LOG_DIRS="$DATA_DIR/kraft"
LOGS_DIR="$DATA_DIR/logs"
SERVER_LOG="$LOGS_DIR/server.log"
CONSOLE_LOG="$LOGS_DIR/console.log"
PROPS="$KAFKA_HOME_DIR/server.properties"
PID_FILE="$KAFKA_HOME_DIR/kafka.pid"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
SASL_BOOTSTRAP="127.0.0.1:$SASL_PORT"
# written once the SCRAM users exist in the metadata log (format or, for older data, kafka-configs)
SCRAM_STAMP="$DATA_DIR/scram-users"
VENV_PY="$REPO_ROOT/.venv/bin/python"

log() { echo "[kafka] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# pid from the pid file if that process is alive (and is a java process), else nothing.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    # guard against a recycled pid belonging to some other program
    if [[ -r "/proc/$pid/cmdline" ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'; then
      return 0
    fi
    echo "$pid"
  fi
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when the broker answers a metadata request (aiokafka from .venv), else just the TCP port.
broker_answers() {
  port_open "$KAFKA_PORT" || return 1
  if [[ -x "$VENV_PY" ]] && "$VENV_PY" -c 'import aiokafka' >/dev/null 2>&1; then
    "$VENV_PY" - "$BOOTSTRAP" >/dev/null 2>&1 <<'PY'
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main(bootstrap):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        # a metadata round-trip that lists the (single) broker
        cluster = await asyncio.wait_for(admin.describe_cluster(), 10)
        if not cluster.get("brokers"):
            raise SystemExit(1)
    finally:
        await admin.close()

asyncio.run(main(sys.argv[1]))
PY
  fi
}

resolve_jars() {
  local want have=""
  want="$(sha256_of "$POM")"
  [[ -f "$LIBS_STAMP" ]] && have="$(cat "$LIBS_STAMP")"
  if [[ -d "$LIBS_DIR" && "$want" == "$have" ]] && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is needed to fetch the Kafka jars"
  command -v java >/dev/null 2>&1 || die "java (17+) is needed to run Kafka"
  log "resolving Kafka jars with Maven into $LIBS_DIR (once; takes ~30-60 s) ..."
  local t0=$SECONDS tmp="$LIBS_DIR.tmp"
  rm -rf "$tmp"
  mkdir -p "$KAFKA_HOME_DIR"
  local mvn_log="$KAFKA_HOME_DIR/maven.log"
  if ! mvn -B -Dstyle.color=never --no-transfer-progress -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$mvn_log" 2>&1; then
    tail -n 60 "$mvn_log" >&2
    rm -rf "$tmp"
    die "Maven could not resolve the Kafka jars (full output in $mvn_log)"
  fi
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  echo "$want" >"$LIBS_STAMP"
  log "jars resolved in $((SECONDS - t0)) s ($(find "$LIBS_DIR" -name "*.jar" | wc -l) jars)"
}

write_properties() {
  mkdir -p "$LOG_DIRS" "$LOGS_DIR"
  cat >"$PROPS" <<EOF
# written by deploy/kafka/kafka.sh; edits are overwritten on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
# the SASL listener, as a secured production cluster would have it (no TLS on loopback)
listener.name.sasl_plaintext.sasl.enabled.mechanisms=$SASL_MECHANISMS
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$LOG_DIRS
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

# Sets JAVA_CMD (array): the JVM with heap, logging and class path options.
set_java_cmd() {
  local heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  JAVA_CMD=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$LOG4J_CONFIG" "-Dkafka.logs.dir=$LOGS_DIR"
    -cp "$LIBS_DIR/*")
}

format_storage() {
  if [[ -f "$LOG_DIRS/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  set_java_cmd
  cluster_id="$("${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid 2>>"$CONSOLE_LOG" | tail -n 1)"
  [[ -n "$cluster_id" ]] || die "could not generate a cluster id (see $CONSOLE_LOG)"
  log "formatting storage in $LOG_DIRS (cluster id $cluster_id)"
  "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" \
    --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]" >>"$CONSOLE_LOG" 2>&1 \
    || { tail -n 50 "$CONSOLE_LOG" >&2; die "formatting the Kafka storage failed"; }
  scram_stamp >"$SCRAM_STAMP"
}

# user and a hash of the password: what the SCRAM credentials in the metadata log were made from
scram_stamp() {
  local digest
  if command -v sha256sum >/dev/null 2>&1; then digest="$(printf %s "$SASL_PASSWORD" | sha256sum | cut -d' ' -f1)"
  else digest="$(printf %s "$SASL_PASSWORD" | shasum -a 256 | cut -d' ' -f1)"
  fi
  echo "$SASL_USER $digest"
}

# Data formatted before the SASL listener existed (or with another user or password) lacks these
# SCRAM credentials: set them on the running broker.
ensure_scram_users() {
  [[ "$(cat "$SCRAM_STAMP" 2>/dev/null)" == "$(scram_stamp)" ]] && return 0
  log "adding SCRAM users ($SASL_USER) to existing data"
  set_java_cmd
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do  # one credential per request
    "${JAVA_CMD[@]}" kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --alter --entity-type users \
      --entity-name "$SASL_USER" --add-config "$mechanism=[password=$SASL_PASSWORD]" \
      >>"$CONSOLE_LOG" 2>&1 || { tail -n 20 "$CONSOLE_LOG" >&2; die "could not add the SCRAM user for $mechanism"; }
  done
  scram_stamp >"$SCRAM_STAMP"
}

print_addresses() {
  echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"
  echo "KAFKA_SASL_BOOTSTRAP_SERVERS=$SASL_BOOTSTRAP"
  echo "KAFKA_LIBS=$LIBS_DIR"          # Kafka's jars: its Java tools run from them
  echo "KAFKA_LOG_DIRS=$LOG_DIRS"      # the broker's data (the unreadable-batch test writes into it)
}

show_logs() {
  local f
  for f in "$SERVER_LOG" "$CONSOLE_LOG"; do
    if [[ -s "$f" ]]; then
      echo "----- last 50 lines of $f -----" >&2
      tail -n 50 "$f" >&2
    fi
  done
}

kill_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do   # up to 30 s for a clean shutdown
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "broker (pid $pid) did not stop within 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

cmd_stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping broker (pid $pid) ..."
  kill_pid "$pid"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]] && broker_answers; then
    log "running (pid $pid)"
    print_addresses
    return 0
  fi
  if [[ -n "$pid" ]]; then
    log "process $pid is alive but the broker does not answer on $BOOTSTRAP"
  else
    log "not running"
  fi
  return 1
}

cmd_start() {
  local fresh=0 arg
  for arg in "$@"; do
    case "$arg" in
      --fresh) fresh=1 ;;
      *) die "unknown option for start: $arg" ;;
    esac
  done

  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" && $fresh -eq 1 ]]; then
    cmd_stop
    pid=""
  fi
  if [[ -n "$pid" ]]; then
    log "already running (pid $pid)"
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until broker_answers; do
      ((SECONDS < deadline)) || { show_logs; die "broker pid $pid runs but does not answer on $BOOTSTRAP"; }
      sleep 1
    done
    print_addresses
    return 0
  fi
  rm -f "$PID_FILE"

  if port_open "$KAFKA_PORT" || port_open "$CONTROLLER_PORT" || port_open "$SASL_PORT"; then
    die "port $KAFKA_PORT, $CONTROLLER_PORT or $SASL_PORT is already in use by another process (set KAFKA_PORT)"
  fi

  resolve_jars

  if [[ $fresh -eq 1 ]]; then
    log "wiping $DATA_DIR (--fresh)"
    rm -rf "$DATA_DIR"
  fi
  # keep the previous run's logs one generation back, so a failure shows only this run's lines
  local f
  for f in "$SERVER_LOG" "$CONSOLE_LOG"; do
    if [[ -f "$f" ]]; then mv -f "$f" "$f.1"; fi
  done
  write_properties
  format_storage

  log "starting broker on $BOOTSTRAP, SASL on $SASL_BOOTSTRAP (controller 127.0.0.1:$CONTROLLER_PORT) ..."
  local t0=$SECONDS
  set_java_cmd
  nohup "${JAVA_CMD[@]}" kafka.Kafka "$PROPS" </dev/null >>"$CONSOLE_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + START_TIMEOUT_S))
  while ! broker_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_logs
      rm -f "$PID_FILE"
      die "broker process exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_logs
      kill_pid "$pid"
      rm -f "$PID_FILE"
      die "broker did not answer on $BOOTSTRAP within $START_TIMEOUT_S s"
    fi
    sleep 1
  done
  ensure_scram_users
  log "broker ready in $((SECONDS - t0)) s (pid $pid, logs in $LOGS_DIR)"
  print_addresses
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    jars) resolve_jars; echo "KAFKA_LIBS=$LIBS_DIR" ;;
    *)
      echo "usage: $0 start [--fresh] | stop | status | jars" >&2
      exit 2
      ;;
  esac
}

main "$@"
