#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration against the
# real aqueductd, SQLite and a throwaway PostgreSQL that the suite starts itself, conformance with
# the official OpenAI Node SDK). Extra arguments go to ctest, e.g. `bash tests/run.sh -L integration`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AQUEDUCT_BUILD_DIR:-$repo/build}
cd "$repo"

conformance=$repo/tests/conformance
if [[ -f $conformance/package.json ]]; then
  bash etc/bootstrap.sh --with-node
  if [[ -f $conformance/package-lock.json ]]; then
    (cd "$conformance" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$conformance" && npm install --no-audit --no-fund --loglevel=error)
  fi
else
  bash etc/bootstrap.sh
fi

export BOOST_TEST_COLOR_OUTPUT=no
ctest --test-dir "$build" --output-on-failure --timeout 900 -j "$(nproc)" "$@"
