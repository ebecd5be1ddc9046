#!/usr/bin/env bash
# The Debian package end to end: builds the .deb with CPack from this build tree, checks its
# control data (runtime dependencies, conffile, maintainer scripts) and file list, extracts it
# with `dpkg -x` into a scratch root, and starts the installed /usr/bin/aqueductd from the
# installed /etc/aqueduct/aqueduct.json, unchanged, inside that root: a chroot in private mount
# and network namespaces (the host's shared libraries bound in read-only; the installed config's
# fixed port 8080 is then the namespace's own). The daemon must answer /healthz, /readyz, an
# authenticated Files API upload and list, keep its SQLite database in /var/lib/aqueduct, and
# stop cleanly on SIGTERM. Needs root (CI runs as root); fails, never skips, without it.
#
# Usage: deb_test.sh BUILD_DIR   (CTest passes it; about 15 s, most of it CPack stripping)
set -euo pipefail
build=$(cd "$1" && pwd)
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "needs root (namespaces and chroot); CI runs as root"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/aq-deb-XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# ---- build and inspect ----------------------------------------------------------------------
cpack --config "$build/CPackConfig.cmake" -B "$scratch/pkg" >"$scratch/cpack.log" 2>&1 || { cat "$scratch/cpack.log"; fail "cpack"; }
debs=("$scratch"/pkg/aqueduct_*_*.deb)
[[ ${#debs[@]} == 1 && -f ${debs[0]} ]] || fail "expected one aqueduct_*.deb, got: ${debs[*]}"
deb=${debs[0]}

depends=$(dpkg-deb -f "$deb" Depends)
for dep in adduser libssl3 libpq5 libsqlite3-0 libboost-json1.81.0 libsoci-core4.0 libsoci-postgresql4.0 libsoci-sqlite3-4.0 libstdc++6; do
  [[ ", $depends," == *", $dep "* || ", $depends," == *", $dep,"* ]] || fail "Depends lacks $dep: $depends"
done
[[ $(dpkg-deb -f "$deb" Package) == aqueduct ]] || fail "package name"
control=$scratch/control
dpkg-deb -e "$deb" "$control"
[[ $(cat "$control/conffiles") == /etc/aqueduct/aqueduct.json ]] || fail "conffiles: $(cat "$control/conffiles")"
for script in postinst prerm postrm; do
  [[ -x $control/$script ]] || fail "$script missing or not executable"
  sh -n "$control/$script" || fail "$script is not valid sh"
done
grep -q 'adduser --system --group --home /var/lib/aqueduct' "$control/postinst" || fail "postinst creates no system user"

listing=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/aqueductd ./usr/lib/aqueduct/plugins/libfiles.so ./usr/lib/aqueduct/plugins/libbatches.so \
         ./etc/aqueduct/aqueduct.json ./usr/lib/systemd/system/aqueductd.service ./usr/include/aqueduct/abi.h \
         ./usr/include/aqueduct/plugin.hpp ./usr/lib/cmake/AqueductSDK/AqueductSDKConfig.cmake \
         ./usr/share/doc/aqueduct/README.md ./var/lib/aqueduct/; do
  grep -qxF "$f" <<<"$listing" || fail "the package lacks $f"
done

# ---- extract and check the unit ---------------------------------------------------------------
root=$scratch/root
dpkg -x "$deb" "$root"
unit=$root/usr/lib/systemd/system/aqueductd.service
for line in 'User=aqueduct' 'StateDirectory=aqueduct' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
            'LimitNOFILE=65536' 'ExecStart=/usr/bin/aqueductd --config /etc/aqueduct/aqueduct.json'; do
  grep -qxF "$line" "$unit" || fail "the unit lacks $line"
done
# systemd's own parser: any unknown or invalid directive is reported. The binaries it names are
# in the scratch root, not on this machine, and that is all it may say.
verify=$(systemd-analyze verify "$unit" 2>&1 || true)
problems=$(grep -v 'is not executable: No such file or directory' <<<"$verify" || true)
[[ -z $problems ]] || fail "systemd-analyze verify: $problems"
grep -q '"max_connections": 16384' "$root/etc/aqueduct/aqueduct.json" || fail "LimitNOFILE is matched to max_connections 16384"

# ---- start the installed daemon inside the root -----------------------------------------------
token=deb-test-$RANDOM$RANDOM
export AQUEDUCT_ADMIN_TOKEN_SHA256=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
export AQ_ROOT=$root AQ_TOKEN=$token
unshare --mount --net --propagation private bash -euo pipefail -c '
  fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
  root=$AQ_ROOT
  ip link set lo up
  # The host libraries the package depends on, read-only; /lib64 for the dynamic loader.
  mkdir -p "$root/usr/lib/x86_64-linux-gnu" "$root/usr/lib64" "$root/dev" "$root/proc" "$root/tmp"
  ln -s usr/lib64 "$root/lib64"
  ln -s usr/lib "$root/lib"
  mount --bind -o ro /usr/lib/x86_64-linux-gnu "$root/usr/lib/x86_64-linux-gnu"
  mount --bind -o ro /usr/lib64 "$root/usr/lib64"
  mount --rbind /dev "$root/dev"
  mount -t proc proc "$root/proc"
  chmod 1777 "$root/tmp"
  chroot "$root" /usr/bin/aqueductd check-config /etc/aqueduct/aqueduct.json >"$root/tmp/check.log" 2>&1 \
    || { cat "$root/tmp/check.log"; fail "check-config refused the installed config"; }
  chroot "$root" /usr/bin/aqueductd --config /etc/aqueduct/aqueduct.json >"$root/tmp/aqueductd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    grep -q "listening on http://127.0.0.1:8080" "$root/tmp/aqueductd.log" && break
    kill -0 $pid 2>/dev/null || { cat "$root/tmp/aqueductd.log"; fail "aqueductd exited at start"; }
    sleep 0.1
  done
  grep -q "listening on http://127.0.0.1:8080" "$root/tmp/aqueductd.log" || { cat "$root/tmp/aqueductd.log"; fail "no listening line"; }
  base=http://127.0.0.1:8080
  [[ $(curl -sS "$base/healthz") == "{\"status\":\"ok\"}" ]] || fail "healthz: $(curl -sS "$base/healthz")"
  ready=""
  for _ in $(seq 1 100); do
    ready=$(curl -sS -o /dev/null -w "%{http_code}" "$base/readyz"); [[ $ready == 200 ]] && break; sleep 0.1
  done
  [[ $ready == 200 ]] || fail "readyz answered $ready"
  [[ $(curl -sS -o /dev/null -w "%{http_code}" "$base/v1/files") == 401 ]] || fail "no token must be 401"
  printf "hello from the package\n" >"$root/tmp/hello.txt"
  up=$(curl -sS -w "\n%{http_code}" -H "Authorization: Bearer $AQ_TOKEN" -F purpose=user_data -F "file=@$root/tmp/hello.txt" "$base/v1/files")
  [[ $(tail -n1 <<<"$up") == 200 ]] || fail "upload: $up"
  grep -q "\"bytes\":23" <<<"$up" || fail "upload bytes: $up"
  list=$(curl -sS -H "Authorization: Bearer $AQ_TOKEN" "$base/v1/files")
  grep -q "\"filename\":\"hello.txt\"" <<<"$list" || fail "list: $list"
  [[ -s $root/var/lib/aqueduct/aqueduct.db ]] || fail "no database in /var/lib/aqueduct"
  kill -TERM $pid
  status=0; wait $pid || status=$?
  [[ $status == 0 ]] || { cat "$root/tmp/aqueductd.log"; fail "aqueductd exited with $status on SIGTERM"; }
  umount -R "$root/dev" "$root/proc" "$root/usr/lib64" "$root/usr/lib/x86_64-linux-gnu"
'
echo "deb_test: ok ($(basename "$deb"), $(stat -c %s "$deb") bytes)"
