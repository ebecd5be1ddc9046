#include "batch_line/escape_mask.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
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

// Where the state machine of apply() acts: bit i is set when byte i of the 64 bytes at p is
// a quote, a backslash or a bracket ('{' '[' '}' ']'). apply() goes from one such byte to
// the next with countr_zero, whatever the state: a string's plain run, or the keys and numbers
// between strings, costs a few vector instructions per 64 bytes, and an escape costs one step.
// It replaced a byte-at-a-time loop outside strings and an SSE2 search inside them that
// restarted after every escape (on prose with an escape every few dozen bytes, the search's
// exit branch and the restarts made escape_mask the validator's largest part: perf of a
// files_bench upload). Bytes 0x5B '[' and 0x7B '{' are the only ones whose value with bit 5
// set is '{' (likewise ']' and '}' for '}'), so one OR folds the four brackets into two
// compares.
inline std::uint64_t events64(const char* p) noexcept {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i open = _mm_set1_epi8('{');
    const __m128i close = _mm_set1_epi8('}');
    const __m128i bit5 = _mm_set1_epi8(0x20);
    std::uint64_t m = 0;
    for (int i = 0; i < 4; ++i) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
        const __m128i folded = _mm_or_si128(v, bit5);
        const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                         _mm_or_si128(_mm_cmpeq_epi8(folded, open), _mm_cmpeq_epi8(folded, close)));
        m |= static_cast<std::uint64_t>(static_cast<std::uint16_t>(_mm_movemask_epi8(hit))) << (16 * i);
    }
    return m;
#else
    std::uint64_t m = 0;
    for (int i = 0; i < 64; ++i) {
        const char c = p[i];
        if (c == '"' || c == '\\' || c == '{' || c == '[' || c == '}' || c == ']') m |= std::uint64_t{1} << i;
    }
    return m;
#endif
}

// The same for the last n < 64 bytes of a piece, read from a padded copy.
std::uint64_t events_tail(const char* p, std::size_t n) noexcept {
    char tail[64] = {};  // no byte of the padding is an event
    std::memcpy(tail, p, n);
    return events64(tail);
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
    const char* p = begin;  // the next byte the state machine has not passed
    if (escape_pending_ && p < end) {  // the character after a backslash that ended the last piece
        escape_pending_ = false;
        ++p;
    }
    bool copied = false;
    for (const char* block = p; block < end; block += 64) {
        const auto n = static_cast<std::size_t>(std::min<std::ptrdiff_t>(64, end - block));
        // Where the state machine stands in this block: before it (0), or inside it after an
        // escape that crossed into it; past it, the block holds nothing to do.
        const std::ptrdiff_t from = std::max<std::ptrdiff_t>(0, p - block);
        if (from >= static_cast<std::ptrdiff_t>(n)) continue;
        std::uint64_t m = (n == 64 ? events64(block) : events_tail(block, n)) & (~std::uint64_t{0} << from);
        while (m != 0) {
            const char* const at = block + std::countr_zero(m);
            p = at + 1;
            if (!in_string_) {
                switch (*at) {
                case '"': in_string_ = true; break;
                case '{': case '[': ++depth_; break;
                case '}': case ']': if (depth_ > 0) --depth_; break;
                default: break;  // a backslash outside strings: the parser judges it
                }
            } else if (*at == '"') {
                in_string_ = false;
            } else if (*at == '\\') {
                const std::ptrdiff_t len = depth_ >= masked_depth && !refused_ ? judge_escape(at, end) : refused;
                if (len == refused && depth_ >= masked_depth) refused_ = true;  // the parser stops there
                if (len > 0) {
                    if (!copied) {
                        copy_.assign(begin, end);
                        copied = true;
                    }
                    mask(copy_.data() + (at - begin), len);
                    p = at + len;
                } else if (at + 1 < end) {
                    p = at + 2;  // the backslash and the character it escapes
                } else {
                    escape_pending_ = true;
                    p = end;
                }
            }  // a bracket inside a string is a plain character
            if (p - block >= static_cast<std::ptrdiff_t>(n)) break;
            m &= ~std::uint64_t{0} << (p - block);
        }
    }
    return copied ? std::string_view(copy_) : piece;
}

}  // namespace aq::batch_line
