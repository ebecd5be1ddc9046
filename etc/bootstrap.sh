#!/usr/bin/env bash
# Installs what is missing on Debian 12, then configures and builds aqueduct into build/.
#
#   bash etc/bootstrap.sh [--with-node]
#
# Packages are checked one by one (dpkg-query) and apt runs only when something is missing, so a
# second run goes straight to an incremental build. --with-node also ensures node and npm (for
# the conformance tests with the official OpenAI Node SDK). Runs as root (CI) or through sudo.
# AQUEDUCT_BUILD_DIR overrides the build directory (default: build/ in the repository).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AQUEDUCT_BUILD_DIR:-$repo/build}

packages=(g++ cmake ninja-build pkg-config curl
  libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev libboost-url1.81-dev
  libsoci-dev libssl-dev libpq-dev libsqlite3-dev postgresql-15
  # The S3 tests' throwaway server (tests/support/s3.sh): OpenStack Swift with s3api, and
  # memcached for its auth cache. 70 packages, ~11 MB to download, ~26-46 s to install.
  swift swift-proxy swift-account swift-container swift-object python3-swift memcached openssl)
with_node=
for arg in "$@"; do
  case $arg in
    --with-node) with_node=1 ;;
    *) echo "bootstrap.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

# Node may come from another packaging (e.g. a nodejs build that bundles npm, which conflicts with
# Debian's npm package): what counts is that both commands work.
if [[ -n $with_node ]] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C "$build" -j "$(nproc)"
