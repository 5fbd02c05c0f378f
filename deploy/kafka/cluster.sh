#!/usr/bin/env bash
# A Kafka cluster of several KRaft nodes (broker+controller each) on loopback, from the same Maven
# jars as the single local broker (deploy/kafka/kafka.sh resolves them), configured as managed
# clusters usually are: auto-create off, broker min.insync.replicas=1, internal topics replicated.
# For the three-broker tests (a broker killed and started again) and for trying a cluster by hand.
#
#   deploy/kafka/cluster.sh start [--fresh]   start every node (or those not running); --fresh wipes the data
#   deploy/kafka/cluster.sh stop              stop every node
#   deploy/kafka/cluster.sh kill N            SIGKILL node N (1-based), as a crashed machine
#   deploy/kafka/cluster.sh start-node N      start node N again on its data
#   deploy/kafka/cluster.sh status            exit 0 and print the bootstrap list when all nodes answer
#
# Environment:
#   KAFKA_CLUSTER_NODES      number of nodes (default 3)
#   KAFKA_CLUSTER_PORT       client port of node 1 (default 19192); node N listens on PORT+10*(N-1),
#                            its controller on that port + 1
#   KAFKA_CLUSTER_HOME       working folder (default <repo>/.cache/kafka-cluster): node-N/{data,logs}
#   KAFKA_CLUSTER_HEAP_OPTS  JVM heap per node (default -Xms128m -Xmx256m: three fit a small test machine)
#   KAFKA_HOME_DIR           where kafka.sh keeps the jars (default <repo>/.cache/kafka)
#
# `start` prints KAFKA_CLUSTER_BOOTSTRAP_SERVERS=127.0.0.1:P1,127.0.0.1:P2,... on stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
NODES="${KAFKA_CLUSTER_NODES:-3}"
BASE_PORT="${KAFKA_CLUSTER_PORT:-19192}"
HOME_DIR="${KAFKA_CLUSTER_HOME:-$REPO_ROOT/.cache/kafka-cluster}"
HEAP_OPTS="${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx256m}"
START_TIMEOUT_S="${KAFKA_START_TIMEOUT:-120}"
VENV_PY="$REPO_ROOT/.venv/bin/python"

log() { echo "[kafka-cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

client_port() { echo $((BASE_PORT + 10 * ($1 - 1))); }
controller_port() { echo $(($(client_port "$1") + 1)); }
node_dir() { echo "$HOME_DIR/node-$1"; }
bootstrap() {
  local n list=""
  for ((n = 1; n <= NODES; n++)); do list+="${list:+,}127.0.0.1:$(client_port "$n")"; done
  echo "$list"
}
voters() {
  local n list=""
  for ((n = 1; n <= NODES; n++)); do list+="${list:+,}$n@127.0.0.1:$(controller_port "$n")"; done
  echo "$list"
}

libs() {
  LIBS_DIR="$(bash "$SCRIPT_DIR/kafka.sh" jars | sed -n 's/^KAFKA_LIBS=//p')"
  [[ -n "$LIBS_DIR" ]] || die "kafka.sh could not resolve the jars"
}

java_cmd() {  # node -> JAVA_CMD
  local heap dir
  dir="$(node_dir "$1")"
  read -r -a heap <<<"$HEAP_OPTS"
  JAVA_CMD=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.yaml" "-Dkafka.logs.dir=$dir/logs" -cp "$LIBS_DIR/*")
}

pid_of() {
  local f pid
  f="$(node_dir "$1")/kafka.pid"
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid" || true
}

write_properties() {  # node
  local n=$1 dir
  dir="$(node_dir "$n")"
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<PROPS
# written by deploy/kafka/cluster.sh; edits are overwritten on every start
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(client_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
# as managed clusters have it: topics only by request, one in-sync replica unless a topic says more
auto.create.topics.enable=false
min.insync.replicas=1
default.replication.factor=$((NODES < 3 ? NODES : 3))
offsets.topic.replication.factor=$((NODES < 3 ? NODES : 3))
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$((NODES < 3 ? NODES : 3))
transaction.state.log.min.isr=$((NODES < 3 ? 1 : 2))
share.coordinator.state.topic.replication.factor=$((NODES < 3 ? NODES : 3))
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
}

format() {  # node cluster-id
  local dir
  dir="$(node_dir "$1")"
  [[ -f "$dir/data/meta.properties" ]] && return 0
  java_cmd "$1"
  "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$2" -c "$dir/server.properties" >>"$dir/logs/console.log" 2>&1 \
    || { tail -n 30 "$dir/logs/console.log" >&2; die "formatting node $1 failed"; }
}

start_node() {  # node
  local n=$1 dir pid
  dir="$(node_dir "$n")"
  pid="$(pid_of "$n")"
  [[ -z "$pid" ]] || return 0
  write_properties "$n"
  java_cmd "$n"
  nohup "${JAVA_CMD[@]}" kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/logs/console.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
}

cluster_answers() {  # every node registered as a broker
  [[ -x "$VENV_PY" ]] || return 1
  "$VENV_PY" - "$(bootstrap)" "$NODES" >/dev/null 2>&1 <<'PY'
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main(bootstrap, nodes):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 10)
        if len(cluster.get("brokers", [])) < nodes:
            raise SystemExit(1)
    finally:
        await admin.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
PY
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until cluster_answers; do
    ((SECONDS < deadline)) || { for ((n = 1; n <= NODES; n++)); do tail -n 20 "$(node_dir "$n")/logs/console.log" >&2 || true; done
                                die "the cluster did not answer with $NODES brokers within $START_TIMEOUT_S s"; }
    sleep 1
  done
}

cmd_start() {
  local fresh=0 n
  [[ "${1:-}" == "--fresh" ]] && fresh=1
  libs
  if [[ $fresh -eq 1 ]]; then
    cmd_stop
    rm -rf "$HOME_DIR"
  fi
  mkdir -p "$HOME_DIR"
  local id_file="$HOME_DIR/cluster.id"
  if [[ ! -f "$id_file" ]]; then
    java_cmd 1
    "${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$id_file"
  fi
  log "starting $NODES nodes on $(bootstrap) ..."
  local t0=$SECONDS
  for ((n = 1; n <= NODES; n++)); do
    write_properties "$n"
    format "$n" "$(cat "$id_file")"
    start_node "$n"
  done
  wait_ready
  log "cluster ready in $((SECONDS - t0)) s"
  echo "KAFKA_CLUSTER_BOOTSTRAP_SERVERS=$(bootstrap)"
}

cmd_stop() {
  local n pid i
  for ((n = 1; n <= NODES; n++)); do
    pid="$(pid_of "$n")"
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for ((n = 1; n <= NODES; n++)); do
    pid="$(pid_of "$n")"
    [[ -n "$pid" ]] || continue
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  log "stopped"
}

cmd_kill() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] || die "node $1 is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  log "node $1 killed (pid $pid)"
}

cmd_start_node() {
  libs
  start_node "$1"
  log "node $1 started"
}

cmd_status() {
  cluster_answers && { echo "KAFKA_CLUSTER_BOOTSTRAP_SERVERS=$(bootstrap)"; return 0; }
  log "the cluster does not answer with $NODES brokers"
  return 1
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  kill) cmd_kill "${2:?node}" ;;
  start-node) cmd_start_node "${2:?node}" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start [--fresh] | stop | kill N | start-node N | status" >&2; exit 2 ;;
esac
