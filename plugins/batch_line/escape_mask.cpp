#include "batch_line/escape_mask.hpp"

#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace aq::batch_line {
namespace {

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The value of the four hex digits at p, or -1.
long hex4(const char* p) noexcept {
    long v = 0;
    for (int i = 0; i < 4; ++i) {
        int d = hex_digit(p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

// What the escape at p (*p == '\\') is to Boost.JSON: its length when accepted and whole before
// `end`; refused (invalid, a lone or reversed surrogate); or cut by the end of the piece.
constexpr std::ptrdiff_t refused = 0, cut = -1;
std::ptrdiff_t judge_escape(const char* p, const char* end) noexcept {
    if (end - p < 2) return cut;
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': return 2;
    case 'u': break;
    default: return refused;
    }
    for (const char* h = p + 2; h < p + 6; ++h) {
        if (h == end) return cut;
        if (hex_digit(*h) < 0) return refused;
    }
    const long u1 = hex4(p + 2);
    if (u1 < 0xD800 || u1 > 0xDFFF) return 6;
    if (u1 > 0xDBFF) return refused;  // a trailing surrogate first: Boost's illegal_leading_surrogate
    if (end - p < 12) return cut;
    if (p[6] != '\\' || p[7] != 'u') return refused;
    const long u2 = hex4(p + 8);
    if (u2 < 0xDC00 || u2 > 0xDFFF) return refused;
    return 12;
}

// The first '"' or '\\' at or after p, or end: where a string's plain run stops. One pass finds
// either, 16 bytes at a time with SSE2 (in every x86-64); it replaced a memchr for each (two
// calls per string, most of them a few bytes long, and one more per escape), which made memchr
// a fifth of the validator's time (perf of batch_line_bench).
const char* find_quote_or_backslash(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
        if (hits != 0) return p + std::countr_zero(static_cast<unsigned>(hits));
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\') ++p;
    return p;
}

// Overwrites an accepted escape (2, 6 or 12 bytes) with 'x'. Copies of fixed sizes compile to
// a store or two; a memset call per escape was a third of the mask's time on prose with an
// escape every few dozen bytes.
void mask(char* at, std::ptrdiff_t n) noexcept {
    static constexpr char xs[12] = {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    switch (n) {
    case 2: std::memcpy(at, xs, 2); break;
    case 6: std::memcpy(at, xs, 6); break;
    default: std::memcpy(at, xs, 12); break;  // a surrogate pair
    }
}

}  // namespace

void escape_mask::reset() noexcept {
    in_string_ = false;
    escape_pending_ = false;
    refused_ = false;
    depth_ = 0;
}

std::string_view escape_mask::apply(std::string_view piece) {
    const char* const begin = piece.data();
    const char* const end = begin + piece.size();
    bool copied = false;
    const char* p = begin;
    while (p < end) {
        if (!in_string_) {
            switch (*p++) {
            case '"': in_string_ = true; break;
            case '{': case '[': ++depth_; break;
            case '}': case ']': if (depth_ > 0) --depth_; break;
            default: break;
            }
            continue;
        }
        if (escape_pending_) {  // the character after a backslash that ended the last piece
            escape_pending_ = false;
            ++p;
            continue;
        }
        const char* const stop = find_quote_or_backslash(p, end);
        if (stop == end) return copied ? std::string_view(copy_) : piece;  // the string goes on
        if (*stop == '"') {
            in_string_ = false;
            p = stop + 1;
            continue;
        }
        const char* const slash = stop;
        const std::ptrdiff_t n = depth_ >= masked_depth && !refused_ ? judge_escape(slash, end) : refused;
        if (n == refused && depth_ >= masked_depth) refused_ = true;  // the parser stops there
        if (n > 0) {
            if (!copied) {
                copy_.assign(begin, end);
                copied = true;
            }
            mask(copy_.data() + (slash - begin), n);
            p = slash + n;
        } else if (slash + 1 < end) {
            p = slash + 2;  // the backslash and the character it escapes
        } else {
            escape_pending_ = true;
            p = end;
        }
    }
    return copied ? std::string_view(copy_) : piece;
}

}  // namespace aq::batch_line
