#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration against the
# real aqueductd, SQLite and a throwaway PostgreSQL that the suite starts itself, conformance with
# the official OpenAI Node SDK). Extra arguments go to ctest, e.g. `bash tests/run.sh -L integration`.
#
# `bash tests/run.sh --sanitize [ctest arguments]` (what tests/sanitize.sh runs) does the same in
# the sanitizer tree build-sanitize/: aqueductd, its plugins, the libraries and the test harness
# built with clang-15, ASan (with LeakSanitizer) and UBSan (the suites' own check code plain,
# linked with the sanitizer runtime: tests/CMakeLists.txt), plus a replay of each fuzz target's
# corpus.
# Sanitizer reports go to files (so a report from a daemon a test started is never lost in its
# log); any report fails the run and is printed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AQUEDUCT_BUILD_DIR:-$repo/build}
cd "$repo"

bootstrap=()
sanitize=
if [[ ${1:-} == --sanitize ]]; then
  shift
  sanitize=1
  bootstrap+=(--sanitize)
  build=${AQUEDUCT_SANITIZE_BUILD_DIR:-$repo/build-sanitize}
fi

conformance=$repo/tests/conformance
if [[ -f $conformance/package.json ]]; then
  bash etc/bootstrap.sh --with-node "${bootstrap[@]}"
  if [[ -f $conformance/package-lock.json ]]; then
    (cd "$conformance" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$conformance" && npm install --no-audit --no-fund --loglevel=error)
  fi
else
  bash etc/bootstrap.sh "${bootstrap[@]}"
fi

export BOOST_TEST_COLOR_OUTPUT=no
# Two suites per core: most of a suite's time is spent waiting (on sockets, servers it started,
# upstream latencies and test pauses), so the cores stay busy with twice as many. Measured on 2
# cores: the whole normal suite in 333-357 s at -j4 against 436-531 s at -j2.
jobs=$(($(nproc) * 2))
if [[ -z $sanitize ]]; then
  exec ctest --test-dir "$build" --output-on-failure --timeout 900 -j "$jobs" "$@"
fi

reports=$build/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
source tests/sanitizer_options.sh
# One log_path for both: ASan and UBSan share one runtime, where the last setting would win.
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/report:log_exe_name=1"
export UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/report:log_exe_name=1"
status=0
ctest --test-dir "$build" --output-on-failure --timeout 900 -j "$jobs" "$@" || status=$?
shopt -s nullglob
found=("$reports"/*)
if ((${#found[@]})); then
  for f in "${found[@]}"; do
    echo "==== sanitizer report $(basename "$f")"
    cat "$f"
  done
  echo "sanitize: ${#found[@]} sanitizer report(s), see above" >&2
  exit 1
fi
exit "$status"
