#!/usr/bin/env bash
# Installs what is missing on Debian 12, then configures and builds aqueduct into build/.
#
#   bash etc/bootstrap.sh [--with-node] [--with-bench] [--sanitize] [--target TARGET]
#
# Packages are checked one by one (dpkg-query) and apt runs only when something is missing, so a
# second run goes straight to an incremental build. --with-node also ensures node and npm (for
# the conformance tests with the official OpenAI Node SDK). --with-bench also installs what the
# benchmarks use beside the build (README, "Benchmarks"): nginx-light (files_bench's nginx
# references: WebDAV PUT, sendfile, static files), wrk (many-connection GETs) and linux-perf (where
# the time goes); CI does not need them. Runs as root (CI) or through sudo.
# AQUEDUCT_BUILD_DIR overrides the build directory (default: build/ in the repository).
#
# --sanitize builds the sanitizer tree instead (tests/sanitize.sh, tests/fuzz.sh): clang-15 with
# ASan+UBSan for every target plus the libFuzzer targets (cmake/Sanitizers.cmake), into
# build-sanitize/ (AQUEDUCT_SANITIZE_BUILD_DIR overrides it); it also installs clang-15,
# libfuzzer-15-dev and llvm-15 (llvm-symbolizer, for readable reports); the benchmark programs,
# which nothing runs there, are left out. --target builds only that target.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AQUEDUCT_BUILD_DIR:-$repo/build}

packages=(g++ cmake ninja-build pkg-config curl
  libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev libboost-url1.81-dev
  libsoci-dev libssl-dev libpq-dev libsqlite3-dev postgresql-15
  # The S3 tests' throwaway server (tests/support/s3.sh): OpenStack Swift with s3api, and
  # memcached for its auth cache. 70 packages, ~11 MB to download, ~26-46 s to install.
  swift swift-proxy swift-account swift-container swift-object python3-swift memcached openssl
  # promtool (tests/integration/metrics_test: the /metrics output must pass `promtool check
  # metrics`), ~19 MB; and dpkg-dev for the package test (dpkg-shlibdeps computes the .deb's
  # dependencies), systemd (systemd-analyze verifies the packaged unit) and iproute2 (the
  # package test's network namespace).
  prometheus dpkg-dev systemd iproute2)
with_node=
configure=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
targets=()
while (($#)); do
  case $1 in
    --with-node) with_node=1 ;;
    --with-bench) packages+=(nginx-light wrk linux-perf) ;;
    --sanitize)
      packages+=(clang-15 libfuzzer-15-dev llvm-15)
      build=${AQUEDUCT_SANITIZE_BUILD_DIR:-$repo/build-sanitize}
      configure+=(-DCMAKE_C_COMPILER=clang-15 -DCMAKE_CXX_COMPILER=clang++-15
                  -DAQUEDUCT_SANITIZE=address,undefined -DAQUEDUCT_FUZZ=ON -DAQUEDUCT_BENCHMARKS=OFF) ;;
    --target) targets+=("${2:?--target needs a target name}"); shift ;;
    *) echo "bootstrap.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
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
  cmake -S "$repo" -B "$build" -G Ninja "${configure[@]}"
fi
ninja -C "$build" -j "$(nproc)" "${targets[@]}"
