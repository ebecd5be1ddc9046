#!/usr/bin/env bash
# The whole test suite under ASan (with LeakSanitizer) and UBSan, built with clang-15 into
# build-sanitize/ (see tests/run.sh). Extra arguments go to ctest.
#
# The tests labelled "rss" assert the gateway's peak resident memory for a 1 GiB file. Under ASan
# that figure is ASan's (shadow memory, a quarantine of freed blocks, redzones), not the
# gateway's, so they run in the normal build only (tests/run.sh, CI stage 1).
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" --sanitize -LE rss "$@"
