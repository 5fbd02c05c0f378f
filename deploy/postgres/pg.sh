#!/usr/bin/env bash
# Local PostgreSQL for runs and tests, from the `pgserver` Python package (ships the PostgreSQL
# binaries as a wheel: no system PostgreSQL, no Docker). Uses the project's .venv python.
#
#   deploy/postgres/pg.sh start [--fresh]   start (or reuse) the server; --fresh wipes its data first
#   deploy/postgres/pg.sh stop              stop it cleanly (safe when it is not running)
#   deploy/postgres/pg.sh status            exit 0 and print the URL when running
#
# Environment:
#   PG_DATA_DIR  data folder (default <repo>/.cache/pgdata-test); server log in $PG_DATA_DIR/log
#
# The server listens only on a unix socket (in the data folder). `start` prints
# DATABASE_URL=postgresql://postgres:@/postgres?host=<socket dir> on stdout and writes the URL to
# $PG_DATA_DIR.url. The server keeps running after this script exits, until `stop`.
# When run as root, pgserver runs postgres as the system user `pgserver` (it creates that user
# and opens up the data folder's parent directories so that user can reach it); `stop` therefore
# runs pg_ctl as that user too.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

PG_DATA_DIR="${PG_DATA_DIR:-$REPO_ROOT/.cache/pgdata-test}"
PY="$REPO_ROOT/.venv/bin/python"

log() { echo "[postgres] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_python() {
  [[ -x "$PY" ]] || die "$PY not found: create the venv first (bash scripts/test does it)"
  "$PY" -c 'import pgserver' 2>/dev/null || die "the pgserver package is not installed in .venv"
}

# Prints "running <pid>" or "stopped".
pg_state() {
  "$PY" -W "ignore:XDG_RUNTIME_DIR is not set" - "$PG_DATA_DIR" <<'PY'
import sys
from pathlib import Path
from pgserver.utils import PostmasterInfo
pgdata = Path(sys.argv[1])
info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.is_dir() else None
if info is not None and info.is_running():
    print("running", info.pid)
else:
    print("stopped")
PY
}

cmd_stop() {
  if [[ ! -d "$PG_DATA_DIR" ]]; then
    log "not running (no $PG_DATA_DIR)"
    return 0
  fi
  need_python
  "$PY" -W "ignore:XDG_RUNTIME_DIR is not set" - "$PG_DATA_DIR" <<'PY'
import os, subprocess, sys
from pathlib import Path

import psutil
from pgserver._commands import pg_ctl
from pgserver.utils import PostmasterInfo

pgdata = Path(sys.argv[1]).resolve()
info = PostmasterInfo.read_from_pgdata(pgdata)
if info is None or not info.is_running():
    print("[postgres] not running", file=sys.stderr)
    sys.exit(0)

print(f"[postgres] stopping server (pid {info.pid}) ...", file=sys.stderr)
# pg_ctl refuses to run as root; pgserver runs the server as `pgserver` in that case.
user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
try:
    pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
    print(f"[postgres] pg_ctl stop failed ({err}); terminating pid {info.pid}", file=sys.stderr)
    proc = info.process
    proc.terminate()
    try:
        proc.wait(10)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(5)
print("[postgres] stopped", file=sys.stderr)
PY
}

cmd_status() {
  need_python
  local state
  state="$(pg_state)"
  if [[ "$state" == running* ]]; then
    log "running (pid ${state#running })"
    [[ -f "$PG_DATA_DIR.url" ]] && echo "DATABASE_URL=$(cat "$PG_DATA_DIR.url")"
    return 0
  fi
  log "not running"
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
  need_python

  if [[ $fresh -eq 1 ]]; then
    cmd_stop
    log "wiping $PG_DATA_DIR (--fresh)"
    rm -rf "$PG_DATA_DIR" "$PG_DATA_DIR.url"
  fi
  mkdir -p "$(dirname "$PG_DATA_DIR")"

  local t0=$SECONDS url
  log "starting PostgreSQL in $PG_DATA_DIR ..."
  url="$("$PY" -W "ignore:XDG_RUNTIME_DIR is not set" - "$PG_DATA_DIR" <<'PY'
import logging, sys
from pathlib import Path

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="[postgres] %(message)s")
import pgserver

pgdata = Path(sys.argv[1])
try:
    # cleanup_mode=None: the server outlives this process; pg.sh stop stops it.
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    print(server.get_uri())
except Exception as err:  # show the server log, pgserver only logs it
    log = pgdata / "log"
    if log.exists():
        print(f"----- last 50 lines of {log} -----", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-50:]), file=sys.stderr)
    print(f"[postgres] ERROR: could not start PostgreSQL: {err!r}", file=sys.stderr)
    sys.exit(1)
PY
)" || die "start failed"
  [[ "$url" == postgresql://* ]] || die "unexpected URL from pgserver: $url"
  echo "$url" >"$PG_DATA_DIR.url"
  log "ready in $((SECONDS - t0)) s (log in $PG_DATA_DIR/log)"
  echo "DATABASE_URL=$url"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
      echo "usage: $0 start [--fresh] | stop | status" >&2
      exit 2
      ;;
  esac
}

main "$@"
