# Sanitizer run-time options, sourced by tests/run.sh --sanitize and tests/fuzz.sh.
#
# ASan stops at the first error; its LeakSanitizer checks every process at exit (the daemons the
# tests stop with SIGTERM included). UBSan is built with -fno-sanitize-recover, so a finding
# aborts the process as well. detect_odr_violation=2 reports a global defined twice even with
# equal sizes: the plugins are dlopened modules that link some of the host's libraries again.
# tests/lsan.supp lists the allocations that live until exit on purpose.
symbolizer=/usr/lib/llvm-15/bin/llvm-symbolizer
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=2:halt_on_error=1:external_symbolizer_path=$symbolizer"
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:external_symbolizer_path=$symbolizer"
