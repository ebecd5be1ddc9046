# Sanitizer and fuzzing builds (tests/sanitize.sh, tests/fuzz.sh, .ci/run).
#
#   -DAQUEDUCT_SANITIZE=address,undefined   every target, the daemon and the plugins included, is
#                                           built with these sanitizers; a finding aborts the
#                                           process (-fno-sanitize-recover), so it fails the test
#   -DAQUEDUCT_FUZZ=ON                      builds the libFuzzer targets of tests/fuzz (clang)
#
# One clang build serves both: the whole suite runs under ASan+UBSan, and the fuzz targets are the
# same sanitized code with coverage instrumentation added to the sources they exercise only
# (tests/fuzz/CMakeLists.txt), so the daemon and the other suites do not pay for coverage.
set(AQUEDUCT_SANITIZE "" CACHE STRING "Comma-separated -fsanitize= list for every target (e.g. address,undefined)")
option(AQUEDUCT_FUZZ "Build the libFuzzer targets of tests/fuzz (needs clang)" OFF)

if(AQUEDUCT_SANITIZE)
  # Frame pointers give ASan's fast unwinder whole stacks in reports.
  # UBSan's vptr check is off: it decides an object's type from its vtable's type_info, and with
  # hidden visibility (the host, and plugins that are dlopened modules) a class can have more
  # than one. It reported Boost's system error category, a static singleton, as "invalid vptr" the
  # first time the listener formatted an EMFILE message.
  # -gline-tables-only (after the build type's -g, so it wins): reports keep file:line in every
  # frame, and the build skips full debug info, a large part of compiling Boost-heavy sources.
  add_compile_options(-fsanitize=${AQUEDUCT_SANITIZE} -fno-sanitize=vptr -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -gline-tables-only)
  add_link_options(-fsanitize=${AQUEDUCT_SANITIZE})
endif()

if(AQUEDUCT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "AQUEDUCT_FUZZ needs clang (libFuzzer): configure with CXX=clang++-15 CC=clang-15")
  endif()
  if(NOT AQUEDUCT_SANITIZE)
    message(WARNING "AQUEDUCT_FUZZ without AQUEDUCT_SANITIZE: the fuzz targets find crashes only, not memory errors")
  endif()
endif()
