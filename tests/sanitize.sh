#!/usr/bin/env bash
# The whole test suite under ASan (with LeakSanitizer) and UBSan, built with clang-15 into
# build-sanitize/ (see tests/run.sh). Extra arguments go to ctest.
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" --sanitize "$@"
