#!/usr/bin/env bash
# A throwaway S3-compatible server for the test suite (the CTest fixture "s3"): OpenStack Swift
# from Debian with its s3api middleware, as a one-device "all in one" in a temp dir.
#
#   s3.sh start STATE_DIR   starts it, writes STATE_DIR/s3.env (endpoint, region, keys)
#   s3.sh stop STATE_DIR    stops it and removes its files
#
# Five processes, each on its own random 127.0.0.1 port: memcached and the account, container,
# object and proxy servers (the proxy carries s3api and tempauth). The rings hold the backend
# ports, so they are built at every start, by one /usr/bin/python3 process that also picks the
# ports (one swift-ring-builder call costs ~1.2 s; nine of them would dominate the start). A port
# can be taken between being picked and being bound: a server that exits during startup makes
# the whole attempt stop and start again on new ports (bind_timeout = 1 keeps that quick).
#
# Ready means: memcached accepts a connection, /healthcheck answers 200 on all four servers,
# and a SigV4-signed S3 `GET /` answers 200. The password is random per start (tempauth user
# test:tester). Works as root and as any user: every daemon runs as the current user, and
# /etc/swift is never read for anything but Swift's import-time defaults (swift_dir is set in
# every config). See ../../../shared/TOOLCHAIN.md for the measurements behind each choice.
set -euo pipefail

cmd=${1:?usage: s3.sh start|stop STATE_DIR}
state=${2:?usage: s3.sh start|stop STATE_DIR}

python=/usr/bin/python3   # a venv or pyenv python3 on PATH cannot import swift
export EVENTLET_NO_GREENDNS=yes   # otherwise each daemon imports dnspython: ~1 s CPU more each
servers=(account container object proxy)

# The start time (field 22 of /proc/PID/stat) of a live, non-zombie process, or nothing. A pid
# is only signalled when this still matches what was recorded at start, so a recycled pid is
# never hit.
proc_start_time() {
  local stat rest f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  rest=${stat##*) }            # fields from 3 on (the command name may contain spaces)
  read -r -a f <<<"$rest"
  [[ ${f[0]} == Z || ${f[0]} == X ]] && return 0
  echo "${f[19]}"
}

# Stops every process listed in ROOT/pids ("name pid starttime" lines).
stop_processes() {
  local root=$1 name pid start
  [[ -f $root/pids ]] || return 0
  local live=()
  while read -r name pid start; do
    [[ $(proc_start_time "$pid") == "$start" ]] || continue
    # Swift with workers = 0 exits at once on TERM; memcached only notices TERM on its next
    # 1 s clock tick, so it gets KILL.
    if [[ $name == memcached ]]; then kill -KILL "$pid" 2>/dev/null || true
    else kill -TERM "$pid" 2>/dev/null || true; fi
    live+=("$pid:$start")
  done <"$root/pids"
  # Wait until each is gone (PID 1 may reap late: a zombie counts as gone); KILL after 5 s.
  local entry deadline=$((SECONDS + 5))
  for entry in "${live[@]}"; do
    pid=${entry%%:*}
    start=${entry#*:}
    while [[ $(proc_start_time "$pid") == "$start" ]]; do
      if ((SECONDS >= deadline)); then kill -KILL "$pid" 2>/dev/null || true; fi
      sleep 0.05
    done
  done
  rm -f "$root/pids"
}

stop_server() {
  [[ -f $state/root ]] || return 0
  local root
  root=$(cat "$state/root")
  stop_processes "$root"
  rm -rf "$root"
  rm -f "$state/root" "$state/s3.env"
}

# Picks five free ports and builds the three rings on the first three. Prints the five ports.
build_rings() {
  local root=$1
  "$python" - "$root" <<'PY'
import socket, sys
from swift.common.ring import RingBuilder

root = sys.argv[1]
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
for name, port in zip(("account", "container", "object"), ports):
    b = RingBuilder(4, 1, 0)  # 16 partitions, 1 replica, rebalance at once
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 1.0})
    b.rebalance()
    b.get_ring().save(f"{root}/etc/{name}.ring.gz")
print(*ports)
PY
}

write_configs() {
  local root=$1 p_account=$2 p_container=$3 p_object=$4 p_proxy=$5 p_memcached=$6 password=$7
  local user
  user=$(id -un)
  cat >"$root/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = aqt-s3-fixture

[storage-policy:0]
name = Policy-0
default = yes
EOF
  local name port
  for name in account container object; do
    case $name in
      account) port=$p_account ;;
      container) port=$p_container ;;
      object) port=$p_object ;;
    esac
    cat >"$root/etc/$name-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
bind_timeout = 1
workers = 0
user = $user
swift_dir = $root/etc
devices = $root/srv
mount_check = false
fallocate_reserve = 0

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  cat >"$root/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $p_proxy
bind_timeout = 1
workers = 0
user = $user
swift_dir = $root/etc

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# A request body is dropped (408) when one of its 64 KiB reads waits this long; 60 s by
# default. Short here, so a test can show that a slow upload keeps its streamed PUT fed
# (tests/files/s3_retries_test.cpp).
client_timeout = 10

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$p_memcached

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $password .admin
EOF
  # Every other filter of the pipeline needs only a section naming its egg.
  local filter
  for filter in catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl copy slo dlo \
                versioned_writes; do
    printf '\n[filter:%s]\nuse = egg:swift#%s\n' "$filter" "${filter//-/_}" >>"$root/etc/proxy-server.conf"
  done
}

# Starts one process in the background with its stdio redirected (a caller reading our stdout
# would otherwise wait for the daemons' end) and records "name pid starttime".
launch() {
  local root=$1 name=$2
  shift 2
  "$@" </dev/null >"$root/log/$name.log" 2>&1 &
  local pid=$! start=
  for _ in $(seq 1 50); do
    start=$(proc_start_time "$pid")
    [[ -n $start ]] && break
    sleep 0.01
  done
  echo "$name $pid ${start:-0}" >>"$root/pids"
}

all_alive() {
  local root=$1 name pid start
  while read -r name pid start; do
    [[ $(proc_start_time "$pid") == "$start" ]] || { echo "$name"; return 1; }
  done <"$root/pids"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until the instance answers everything it must; returns 1 when a process died (a port
# clash, most likely) or after 60 s.
wait_ready() {
  local root=$1 p_account=$2 p_container=$3 p_object=$4 p_proxy=$5 p_memcached=$6 password=$7
  local deadline=$((SECONDS + 60)) dead
  while ((SECONDS < deadline)); do
    if ! dead=$(all_alive "$root"); then
      echo "s3.sh: $dead exited during startup" >&2
      return 1
    fi
    if port_open "$p_memcached" &&
       curl -sf -o /dev/null "http://127.0.0.1:$p_account/healthcheck" &&
       curl -sf -o /dev/null "http://127.0.0.1:$p_container/healthcheck" &&
       curl -sf -o /dev/null "http://127.0.0.1:$p_object/healthcheck" &&
       curl -sf -o /dev/null "http://127.0.0.1:$p_proxy/healthcheck" &&
       # curl signs with the key before the first ':' of --user, and the key itself holds a
       # ':': the credentials go in the URL with it encoded. curl sends no payload hash
       # header, which s3api requires.
       curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" \
         -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
         "http://test%3Atester:$password@127.0.0.1:$p_proxy/"; then
      return 0
    fi
    sleep 0.1
  done
  echo "s3.sh: not ready after 60 s" >&2
  return 1
}

case $cmd in
  start)
    for bin in /usr/bin/swift-{account,container,object,proxy}-server /usr/bin/memcached; do
      [[ -x $bin ]] || { echo "s3.sh: $bin is missing (etc/bootstrap.sh installs swift and memcached)" >&2; exit 1; }
    done
    mkdir -p "$state"
    stop_server   # a leftover from an interrupted run
    root=$(mktemp -d /tmp/aqt-s3.XXXXXX)
    echo "$root" >"$state/root"
    trap 'echo "s3.sh: start failed; logs:" >&2; tail -n 20 "$root"/log/*.log >&2 2>/dev/null || true; stop_server' ERR
    password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

    started=
    for attempt in 1 2 3 4 5; do
      rm -rf "$root/etc" "$root/srv" "$root/log" "$root/pids"
      mkdir -p "$root/etc" "$root/srv/d1" "$root/run" "$root/log"
      read -r p_account p_container p_object p_proxy p_memcached < <(build_rings "$root")
      write_configs "$root" "$p_account" "$p_container" "$p_object" "$p_proxy" "$p_memcached" "$password"
      launch "$root" memcached /usr/bin/memcached -l 127.0.0.1 -p "$p_memcached" -U 0 -m 64 -u "$(id -un)"
      for s in "${servers[@]}"; do
        launch "$root" "$s" "/usr/bin/swift-$s-server" "$root/etc/$s-server.conf" -v
      done
      if wait_ready "$root" "$p_account" "$p_container" "$p_object" "$p_proxy" "$p_memcached" "$password"; then
        started=1
        break
      fi
      echo "s3.sh: attempt $attempt failed; retrying on new ports" >&2
      stop_processes "$root"
    done
    [[ -n $started ]] || { echo "s3.sh: could not start Swift" >&2; false; }

    cat >"$state/s3.env.tmp" <<EOF
endpoint=http://127.0.0.1:$p_proxy
region=us-east-1
access_key=test:tester
secret_key=$password
EOF
    mv "$state/s3.env.tmp" "$state/s3.env"
    trap - ERR
    echo "s3.sh: Swift s3api on http://127.0.0.1:$p_proxy (files in $root)"
    ;;
  stop)
    stop_server
    ;;
  *)
    echo "usage: s3.sh start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
