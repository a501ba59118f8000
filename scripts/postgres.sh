#!/usr/bin/env bash
# A throwaway PostgreSQL server on this machine, for an Optuna study shared by sweep workers.
#
#   scripts/postgres.sh start STATE_DIR [PORT]   start (or find running) and print the storage URL
#   scripts/postgres.sh url STATE_DIR            print the storage URL of a started server
#   scripts/postgres.sh stop STATE_DIR           stop it and delete its data
#
# The server listens on 127.0.0.1 only (PORT: a free one when not given), with a generated
# password; the URL (postgresql+psycopg2://lapp:PASSWORD@127.0.0.1:PORT/optuna) is also in STATE_DIR/url,
# readable by this user only. PostgreSQL refuses to run as root: as root, the server runs as
# the `postgres` user with its data in a directory of its own under ${TMPDIR:-/tmp}.
# PG_BIN=/path/to/bin selects the binaries (default: initdb on PATH, else the newest
# /usr/lib/postgresql/*/bin). Exit status 3: PostgreSQL's server binaries are not installed.
set -euo pipefail

usage() { sed -n '4,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 state=$2 port=${3:-}

find_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"; return
  fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [[ -n "$newest" ]] && echo "$newest"
}

bin=$(find_bin || true)
if [[ -z "$bin" || ! -x "$bin/initdb" || ! -x "$bin/pg_ctl" ]]; then
  echo "postgres.sh: PostgreSQL server binaries (initdb, pg_ctl) not found; install PostgreSQL or set PG_BIN" >&2
  exit 3
fi

# Run a server command as the data directory's owner (postgres when we are root).
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

data_dir() { cat "$state/datadir"; }

running() { [[ -f "$state/datadir" ]] && as_owner "$bin/pg_ctl" -D "$(data_dir)/data" status >/dev/null 2>&1; }

start() {
  mkdir -p "$state"
  if running; then cat "$state/url"; return; fi
  [[ -n "$port" ]] || port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local base password
  base=$(mktemp -d "${TMPDIR:-/tmp}/lapp-pg.XXXXXX")
  chmod 700 "$base"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$base"
  echo "$base" > "$state/datadir"
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  as_owner sh -c "umask 077; echo '$password' > '$base/pw'"
  as_owner "$bin/initdb" -D "$base/data" -U lapp --pwfile="$base/pw" --auth=scram-sha-256 \
    -E UTF8 --no-instructions >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log" >&2; stop; exit 1; }
  as_owner rm -f "$base/pw"
  as_owner "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
    -o "-p $port -k $base -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
    || { cat "$base/server.log" >&2; stop; exit 1; }
  PGPASSWORD=$password "$bin/createdb" -h 127.0.0.1 -p "$port" -U lapp optuna || { stop; exit 1; }
  (umask 077; echo "postgresql+psycopg2://lapp:$password@127.0.0.1:$port/optuna" > "$state/url")
  cat "$state/url"
}

stop() {
  [[ -f "$state/datadir" ]] || return 0
  local base
  base=$(data_dir)
  if running; then as_owner "$bin/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null; fi
  rm -rf "$base"
  rm -f "$state/datadir" "$state/url"
}

case "$cmd" in
  start) start ;;
  url) [[ -f "$state/url" ]] && cat "$state/url" || { echo "postgres.sh: no server started in $state" >&2; exit 1; } ;;
  stop) stop ;;
  *) usage ;;
esac
