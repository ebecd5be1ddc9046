#include "batch_line/escape_mask.hpp"

#include <cstring>

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
    // The next quote at or after p while in a string: searched once per string part, never
    // again over the same bytes (a string of many escapes costs one pass, not one per escape).
    const char* quote = nullptr;
    while (p < end) {
        if (!in_string_) {
            switch (*p++) {
            case '"': in_string_ = true; quote = nullptr; break;
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
        if (!quote || quote < p) {
            quote = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
            if (!quote) quote = end;
        }
        const char* slash = static_cast<const char*>(std::memchr(p, '\\', static_cast<std::size_t>(quote - p)));
        if (!slash) {
            if (quote == end) return copied ? std::string_view(copy_) : piece;
            in_string_ = false;
            p = quote + 1;
            continue;
        }
        const std::ptrdiff_t n = depth_ >= masked_depth && !refused_ ? judge_escape(slash, end) : refused;
        if (n == refused && depth_ >= masked_depth) refused_ = true;  // the parser stops there
        if (n > 0) {
            if (!copied) {
                copy_.assign(begin, end);
                copied = true;
            }
            std::memset(copy_.data() + (slash - begin), 'x', static_cast<std::size_t>(n));
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
