#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (the CTest fixture "postgres").
#
#   postgres.sh start STATE_DIR   starts a server, writes its URL to STATE_DIR/url
#   postgres.sh stop STATE_DIR    stops it and removes its files
#
# The server's files live in a fresh 0755 dir under /tmp (the server refuses a data dir it cannot
# reach, and the build tree may sit under a 0700 home). As root, every server command runs as
# the postgres user (the server refuses to run as root). Fast and unsafe on purpose: fsync off.
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop STATE_DIR}
state=${2:?usage: postgres.sh start|stop STATE_DIR}

pgbin=
for candidate in /usr/lib/postgresql/*/bin; do
  [[ -x $candidate/pg_ctl ]] && pgbin=$candidate
done
if [[ -z $pgbin ]]; then
  echo "postgres.sh: no PostgreSQL server found under /usr/lib/postgresql (install postgresql-15)" >&2
  exit 1
fi

as_server_user() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop_server() {
  [[ -f $state/root ]] || return 0
  local root
  root=$(cat "$state/root")
  if [[ -d $root/data ]]; then
    as_server_user "$pgbin/pg_ctl" -D "$root/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$root"
  rm -f "$state/root" "$state/url"
}

case $cmd in
  start)
    mkdir -p "$state"
    stop_server   # a leftover from an interrupted run
    root=$(mktemp -d /tmp/aqt-pg.XXXXXX)
    chmod 755 "$root"
    echo "$root" > "$state/root"
    if [[ $(id -u) == 0 ]]; then chown postgres: "$root"; fi
    trap 'echo "postgres.sh: start failed; server log:" >&2; cat "$root/server.log" >&2 2>/dev/null || true; stop_server' ERR

    as_server_user "$pgbin/initdb" -D "$root/data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
      || { cat "$root/initdb.log" >&2; false; }
    as_server_user mkdir "$root/sock"

    started=
    for _ in $(seq 1 20); do
      port=$((20000 + RANDOM % 40000))
      if as_server_user "$pgbin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 30 start \
           -o "-p $port -k $root/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
           >/dev/null 2>&1; then
        started=1
        break
      fi
    done
    [[ -n $started ]] || { echo "postgres.sh: could not start the server on any port" >&2; false; }

    password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    as_server_user "$pgbin/psql" -h "$root/sock" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE aqt LOGIN CREATEDB PASSWORD '$password'" \
      -c "CREATE DATABASE aqt OWNER aqt" >/dev/null
    echo "postgresql://aqt:$password@127.0.0.1:$port/aqt" > "$state/url.tmp"
    mv "$state/url.tmp" "$state/url"
    trap - ERR
    echo "postgres.sh: server on 127.0.0.1:$port (files in $root)"
    ;;
  stop)
    stop_server
    ;;
  *)
    echo "usage: postgres.sh start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
