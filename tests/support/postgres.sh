#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (the CTest fixture "postgres").
#
#   postgres.sh start STATE_DIR [durable]
#                                 starts a server, writes its URL to STATE_DIR/url; "durable"
#                                 keeps synchronous_commit on, so a commit survives a crash of
#                                 the server (not of the machine: fsync stays off)
#   postgres.sh stop STATE_DIR    stops it and removes its files
#
# For fault tests, on a server of their own (never the shared fixture's):
#   postgres.sh halt STATE_DIR    stops it (fast shutdown: sessions are terminated), keeps its files
#   postgres.sh crash STATE_DIR   kill -9 of the postmaster; returns once its children are gone
#   postgres.sh resume STATE_DIR  starts it again, same port and data dir (crash recovery if needed)
#
# The server's files live in a fresh 0755 dir under /tmp (the server refuses a data dir it cannot
# reach, and the build tree may sit under a 0700 home). As root, every server command runs as
# the postgres user (the server refuses to run as root). Fast and unsafe on purpose: fsync off.
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop|halt|crash|resume STATE_DIR}
state=${2:?usage: postgres.sh start|stop|halt|crash|resume STATE_DIR}

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
  # Removed in the background: after a full suite the data dir holds a database per test case
  # (about 17,000 files, 55 s to unlink on this shared disk), longer than pg_stop may take. The
  # rename first, so nothing uses the files meanwhile.
  if [[ -d $root ]]; then
    mv "$root" "$root.removing"
    setsid rm -rf "$root.removing" </dev/null >/dev/null 2>&1 &
  fi
  rm -f "$state/root" "$state/url"
}

server_options() {
  local commit=off
  [[ -f $state/durable ]] && commit=on
  echo "-p $1 -k $2/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=$commit -c full_page_writes=off -c max_connections=200"
}

# Whether a process is alive (a zombie waiting for PID 1 to reap it is not).
# alive and children_of read /proc/PID/stat with builtins only: with a sed and a cut per
# process, children_of's scan took seconds on a loaded 2-core machine (1.2 s idle, 65
# processes), and a test that kills the postmaster while an upload is held at a 5 s test pause
# saw the kill land after the pause had ended.
stat_fields() {  # the fields after the command name: state, ppid, ...
  local stat
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  read -r -a fields <<< "${stat##*) }"
}

alive() {
  local fields
  stat_fields "$1" || return 1
  [[ ${fields[0]} != Z ]]
}

# The PIDs whose parent is $1.
children_of() {
  local p fields
  for p in /proc/[0-9]*; do
    stat_fields "${p#/proc/}" || continue
    [[ ${fields[1]} == "$1" ]] && echo "${p#/proc/}"
  done
  return 0
}

case $cmd in
  start)
    mkdir -p "$state"
    stop_server   # a leftover from an interrupted run
    rm -f "$state/durable"
    if [[ ${3:-} == durable ]]; then touch "$state/durable"; fi
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
           -o "$(server_options "$port" "$root")" >/dev/null 2>&1; then
        started=1
        break
      fi
    done
    [[ -n $started ]] || { echo "postgres.sh: could not start the server on any port" >&2; false; }

    password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    as_server_user "$pgbin/psql" -h "$root/sock" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE aqt LOGIN CREATEDB PASSWORD '$password'" \
      -c "CREATE DATABASE aqt OWNER aqt" >/dev/null
    echo "$port" > "$state/port"
    echo "postgresql://aqt:$password@127.0.0.1:$port/aqt" > "$state/url.tmp"
    mv "$state/url.tmp" "$state/url"
    trap - ERR
    echo "postgres.sh: server on 127.0.0.1:$port (files in $root)"
    ;;
  stop)
    stop_server
    ;;
  halt)
    root=$(cat "$state/root")
    as_server_user "$pgbin/pg_ctl" -D "$root/data" -m fast -w -t 60 stop >/dev/null
    ;;
  crash)
    root=$(cat "$state/root")
    pid=$(head -1 "$root/data/postmaster.pid")
    children=$(children_of "$pid")
    kill -9 "$pid"
    # The children notice their postmaster's death and exit; a new postmaster refuses to start
    # while any of them still holds the old shared memory. Stragglers after 10 s are killed too.
    for i in $(seq 1 200); do
      left=
      for c in $pid $children; do alive "$c" && left="$left $c"; done
      [[ -z $left ]] && break
      if [[ $i == 100 ]]; then kill -9 $left 2>/dev/null || true; fi
      sleep 0.1
    done
    [[ -z $left ]] || { echo "postgres.sh: processes$left outlived their postmaster" >&2; exit 1; }
    # A dead postmaster left unreaped (a zombie: PID 1 may reap late) still "exists" for the
    # next postmaster's lock-file checks, which would refuse to start. It is dead: its locks are
    # stale.
    if [[ -e /proc/$pid ]]; then
      rm -f "$root/data/postmaster.pid" "$root/sock/.s.PGSQL.$(cat "$state/port").lock"
    fi
    ;;
  resume)
    root=$(cat "$state/root")
    port=$(cat "$state/port")
    as_server_user "$pgbin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 start \
      -o "$(server_options "$port" "$root")" >/dev/null \
      || { echo "postgres.sh: resume failed; server log:" >&2; tail -20 "$root/server.log" >&2; exit 1; }
    ;;
  *)
    echo "usage: postgres.sh start|stop|halt|crash|resume STATE_DIR" >&2
    exit 2
    ;;
esac
