// A broken invariant in a fuzz target: print what and where, then abort, which libFuzzer reports
// as a crash and saves the input for. Independent of NDEBUG.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace aq::fuzz {

[[noreturn]] inline void invariant_failed(const char* condition, const std::string& detail, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: invariant broken: %s\n  %s\n", file, line, condition, detail.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace aq::fuzz

#define AQ_FUZZ_CHECK(condition, detail) \
    ((condition) ? void() : ::aq::fuzz::invariant_failed(#condition, (detail), __FILE__, __LINE__))
