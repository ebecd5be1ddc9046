#!/usr/bin/env bash
# Installs what is missing, builds, and starts aqueductd on the embedded default config
# (etc/aqueduct.json: SQLite in var/, http://127.0.0.1:8080) with a development token.
#
# The token is random, kept in var/dev-token (mode 600, not committed) so it survives restarts;
# only its SHA-256 reaches the config, through AQUEDUCT_DEV_TOKEN_SHA256.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AQUEDUCT_BUILD_DIR:-$repo/build}
cd "$repo"

bash etc/bootstrap.sh

mkdir -p var
if [[ ! -s var/dev-token ]]; then
  (umask 077 && printf 'aq-dev-%s\n' "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')" > var/dev-token)
fi
token=$(head -n1 var/dev-token)
AQUEDUCT_DEV_TOKEN_SHA256=$(printf '%s' "$token" | "$build/bin/aqueductd" hash-token)
export AQUEDUCT_DEV_TOKEN_SHA256

cat <<BANNER

  aqueduct (development)
    base URL   http://127.0.0.1:8080/v1
    token      $token
    try        curl -H "Authorization: Bearer $token" http://127.0.0.1:8080/v1/files
    config     etc/aqueduct.json   data  var/aqueduct.db   stop  Ctrl-C

BANNER
exec "$build/bin/aqueductd" --config etc/aqueduct.json
