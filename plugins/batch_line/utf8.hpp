// A streaming UTF-8 validator: bytes can be fed in pieces split anywhere, even inside a
// character. Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
//
// Two methods, one verdict:
//  - simd: 32 bytes at a time with AVX2 table lookups (Keiser & Lemire, "Validating UTF-8 in
//    less than one instruction per byte", 2021), the method simdjson uses. Prose in most
//    languages has a non-ASCII byte every few dozen bytes, and the bytewise method then steps
//    through every character: it was 15% of a batch upload's samples (perf of an upload of
//    German text). On that text the simd method checks 8.1 GB/s from cache against 2.6 for the
//    bytewise one. Chosen when the CPU has AVX2 (x86-64 since 2013), checked at run time.
//  - bytewise: a state machine over each byte after a non-ASCII one; ASCII runs are skipped 64
//    bytes at a time (SSE2) or a word at a time. The fallback, and the reference the simd method
//    is tested against (tests/batch_line/utf8_test.cpp, the batch_validator fuzz target).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace aq::batch_line {

class utf8_validator {
public:
    enum class method { best, simd, bytewise };
    // True when `m` can run on this CPU (bytewise and best always can).
    static bool available(method m) noexcept;

    explicit utf8_validator(method m = method::best) noexcept;

    void feed(std::string_view bytes) noexcept;
    // True when everything fed so far is valid UTF-8 and no character is left incomplete.
    bool complete() const noexcept;

private:
    void feed_bytewise(const unsigned char* p, const unsigned char* end) noexcept;

    bool simd_;
    // simd: the last whole block checked (its last 3 bytes start characters the next block may
    // continue), the bytes short of a block held for the next feed, and whether any block failed.
    alignas(32) unsigned char prev_[32] = {};
    alignas(32) unsigned char held_[32] = {};
    std::size_t held_bytes_ = 0;
    bool failed_ = false;
    // bytewise: continuation bytes still needed, and the range the next one must fall in.
    int need_ = 0;
    std::uint8_t lo_ = 0x80, hi_ = 0xBF;
};

inline bool is_valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    v.feed(s);
    return v.complete();
}

}  // namespace aq::batch_line
