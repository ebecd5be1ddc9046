// A streaming UTF-8 validator: bytes can be fed in pieces split inside a character.
// Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace aq::batch_line {

class utf8_validator {
public:
    // False at the first invalid byte; the validator then stays invalid.
    bool feed(std::string_view bytes) noexcept {
        const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
        const auto* end = p + bytes.size();
        while (p < end) {
            if (!valid_) return false;
            if (need_ == 0) {
                p = skip_ascii(p, end);
                if (p == end) break;
            }
            step(*p++);
        }
        return valid_;
    }
    // True when everything fed so far is valid and no character is left incomplete.
    bool complete() const noexcept { return valid_ && need_ == 0; }
    bool valid() const noexcept { return valid_; }

private:
    // The first byte at or after p that is not ASCII, or end. ASCII is almost every byte of a
    // batch file, so this loop was most of the validator's own time when it went 8 bytes at a
    // time (perf of files_bench): 64 bytes per turn with SSE2 (in every x86-64), then words,
    // and the exact byte found from the word's mask instead of stepping up to it.
    static const unsigned char* skip_ascii(const unsigned char* p, const unsigned char* end) noexcept {
#if defined(__SSE2__)
        while (end - p >= 64) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
            const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
            const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48));
            if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))) != 0) break;
            p += 64;
        }
#endif
        while (end - p >= 8) {
            std::uint64_t word;
            std::memcpy(&word, p, 8);
            if (const std::uint64_t high = word & 0x8080808080808080ull) {
                if constexpr (std::endian::native == std::endian::little) return p + std::countr_zero(high) / 8;
                break;
            }
            p += 8;
        }
        while (p < end && *p < 0x80) ++p;
        return p;
    }

    void step(unsigned char c) noexcept {
        if (need_ == 0) {
            if (c < 0x80) return;
            lo_ = 0x80;
            hi_ = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                need_ = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                need_ = 2;
                if (c == 0xE0) lo_ = 0xA0;  // overlong
                if (c == 0xED) hi_ = 0x9F;  // surrogates
            } else if (c >= 0xF0 && c <= 0xF4) {
                need_ = 3;
                if (c == 0xF0) lo_ = 0x90;  // overlong
                if (c == 0xF4) hi_ = 0x8F;  // > U+10FFFF
            } else {
                valid_ = false;
            }
        } else if (c < lo_ || c > hi_) {
            valid_ = false;
        } else {
            lo_ = 0x80;
            hi_ = 0xBF;
            --need_;
        }
    }

    bool valid_ = true;
    int need_ = 0;
    std::uint8_t lo_ = 0x80, hi_ = 0xBF;
};

inline bool is_valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    return v.feed(s) && v.complete();
}

}  // namespace aq::batch_line
