#include "batch_line/utf8.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AQ_UTF8_SIMD 1
#endif

namespace aq::batch_line {
namespace {

#if defined(AQ_UTF8_SIMD)
// Keiser & Lemire's check. Every error is a pair of adjacent bytes (or a lead byte two or three
// before a byte that must continue it) that no valid text contains. Three 16-entry tables,
// indexed by the high nibble of the previous byte, the low nibble of the previous byte and the
// high nibble of the current byte, give for each the set of error kinds the pair could be; a
// bit set in all three is an error. What the pairs cannot see (the 3rd and 4th bytes of long
// characters) is checked by comparing where continuations must be with where they are.
constexpr std::uint8_t too_short = 1 << 0;   // 11______ 0_______ or 11______ 11______
constexpr std::uint8_t too_long = 1 << 1;    // 0_______ 10______
constexpr std::uint8_t overlong_3 = 1 << 2;  // 11100000 100_____
constexpr std::uint8_t too_large = 1 << 3;   // 11110100 1001____ ... 11111___ 101_____
constexpr std::uint8_t surrogate = 1 << 4;   // 11101101 101_____
constexpr std::uint8_t overlong_2 = 1 << 5;  // 1100000_ 10______
constexpr std::uint8_t too_large_1000 = 1 << 6;  // 11110101 1000____ ... 11111___ 1000____
constexpr std::uint8_t overlong_4 = 1 << 6;      // 11110000 1000____
constexpr std::uint8_t two_conts = 1 << 7;       // 10______ 10______ (checked separately)
constexpr std::uint8_t carry = too_short | too_long | two_conts;

alignas(16) constexpr std::uint8_t byte_1_high[16] = {
    too_long, too_long, too_long, too_long, too_long, too_long, too_long, too_long,  // 0_______
    two_conts, two_conts, two_conts, two_conts,                                      // 10______
    too_short | overlong_2,                                                          // 1100____
    too_short,                                                                       // 1101____
    too_short | overlong_3 | surrogate,                                              // 1110____
    too_short | too_large | too_large_1000 | overlong_4,                             // 1111____
};
alignas(16) constexpr std::uint8_t byte_1_low[16] = {
    carry | overlong_3 | overlong_2 | overlong_4,  // ____0000
    carry | overlong_2,                            // ____0001
    carry,                                         // ____0010
    carry,                                         // ____0011
    carry | too_large,                             // ____0100
    carry | too_large | too_large_1000,            // ____0101
    carry | too_large | too_large_1000,            // ____0110
    carry | too_large | too_large_1000,            // ____0111
    carry | too_large | too_large_1000,            // ____1000
    carry | too_large | too_large_1000,            // ____1001
    carry | too_large | too_large_1000,            // ____1010
    carry | too_large | too_large_1000,            // ____1011
    carry | too_large | too_large_1000,            // ____1100
    carry | too_large | too_large_1000 | surrogate,  // ____1101
    carry | too_large | too_large_1000,            // ____1110
    carry | too_large | too_large_1000,            // ____1111
};
alignas(16) constexpr std::uint8_t byte_2_high[16] = {
    too_short, too_short, too_short, too_short, too_short, too_short, too_short, too_short,  // 0_______
    too_long | overlong_2 | two_conts | overlong_3 | too_large_1000 | overlong_4,            // 1000____
    too_long | overlong_2 | two_conts | overlong_3 | too_large,                              // 1001____
    too_long | overlong_2 | two_conts | surrogate | too_large,                               // 1010____
    too_long | overlong_2 | two_conts | surrogate | too_large,                               // 1011____
    too_short, too_short, too_short, too_short,                                              // 11______
};
#define AQ_AVX2 __attribute__((target("avx2")))

AQ_AVX2 inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
// A 16-byte table in both 128-bit lanes (vpshufb looks up within each lane).
AQ_AVX2 inline __m256i table(const std::uint8_t (&t)[16]) {
    return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

// The tables, loaded once per call into registers.
struct tables {
    __m256i high_1, low_1, high_2, incomplete, nibble;
};

AQ_AVX2 inline tables load_tables() {
    // A block ending inside a character: its last byte a lead, or the one before a lead of 3
    // or 4 bytes, or the one before that a lead of 4. Subtracting these (saturating) leaves
    // non-zero exactly there.
    alignas(32) static constexpr std::uint8_t incomplete_32[32] = {
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0xF0 - 1, 0xE0 - 1, 0xC0 - 1};
    return {table(byte_1_high), table(byte_1_low), table(byte_2_high), load32(incomplete_32), _mm256_set1_epi8(0x0F)};
}

// `input` shifted by n bytes, the last n bytes of `prev_input` coming in first. vpalignr works
// within 128-bit lanes, so the lane that crosses comes from a permute.
template <int n>
AQ_AVX2 inline __m256i prev(__m256i input, __m256i prev_input) {
    return _mm256_alignr_epi8(input, _mm256_permute2x128_si256(prev_input, input, 0x21), 16 - n);
}

// The errors of `input`, given the block before it.
AQ_AVX2 inline __m256i block_errors(const tables& t, __m256i input, __m256i prev_input) {
    const __m256i prev1 = prev<1>(input, prev_input);
    const __m256i special = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(t.high_1, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), t.nibble)),
                         _mm256_shuffle_epi8(t.low_1, _mm256_and_si256(prev1, t.nibble))),
        _mm256_shuffle_epi8(t.high_2, _mm256_and_si256(_mm256_srli_epi16(input, 4), t.nibble)));
    // Where the byte must be a 3rd or 4th byte: two after a lead of 3 or 4 bytes (111_____),
    // three after a lead of 4 (11110___). There `special` has two_conts (0x80) set, and
    // nowhere else may it.
    const __m256i third = _mm256_subs_epu8(prev<2>(input, prev_input), _mm256_set1_epi8(static_cast<char>(0xE0 - 0x80)));
    const __m256i fourth = _mm256_subs_epu8(prev<3>(input, prev_input), _mm256_set1_epi8(static_cast<char>(0xF0 - 0x80)));
    const __m256i must_continue =
        _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(static_cast<char>(0x80)));
    return _mm256_xor_si256(must_continue, special);
}

// Checks n bytes (a multiple of 32) after the block at prev, and leaves the last block there.
// 64 bytes per turn: after ASCII only a character left open by the block before can be wrong;
// otherwise the two blocks are checked independently of each other (they only read the input).
AQ_AVX2 bool check_blocks(const unsigned char* p, std::size_t n, unsigned char* prev_block) {
    const tables t = load_tables();
    __m256i before = load32(prev_block);
    __m256i errors = _mm256_setzero_si256();
    const unsigned char* const end = p + n;
    for (; end - p >= 64; p += 64) {
        const __m256i a = load32(p), b = load32(p + 32);
        if (_mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0)
            errors = _mm256_or_si256(errors, _mm256_subs_epu8(before, t.incomplete));
        else
            errors = _mm256_or_si256(errors, _mm256_or_si256(block_errors(t, a, before), block_errors(t, b, a)));
        before = b;
    }
    if (p < end) {
        const __m256i input = load32(p);
        errors = _mm256_or_si256(errors, _mm256_movemask_epi8(input) == 0 ? _mm256_subs_epu8(before, t.incomplete)
                                                                          : block_errors(t, input, before));
        before = input;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(prev_block), before);
    return _mm256_testz_si256(errors, errors) != 0;
}

// The errors of the last, partial block: `held` padded with ASCII zeros, which also catches a
// character the held bytes (or the block before, when none are held) leave open.
AQ_AVX2 bool check_last(const unsigned char* held, std::size_t n, const unsigned char* prev_block) {
    alignas(32) unsigned char last[32] = {};
    std::memcpy(last, held, n);
    const __m256i errors = block_errors(load_tables(), load32(last), load32(prev_block));
    return _mm256_testz_si256(errors, errors) != 0;
}

bool cpu_has_avx2() noexcept {
    static const bool has = __builtin_cpu_supports("avx2");
    return has;
}
#endif

// The first byte at or after p that is not ASCII, or end.
const unsigned char* skip_ascii(const unsigned char* p, const unsigned char* end) noexcept {
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

}  // namespace

bool utf8_validator::available(method m) noexcept {
#if defined(AQ_UTF8_SIMD)
    if (m == method::simd) return cpu_has_avx2();
#else
    if (m == method::simd) return false;
#endif
    return true;
}

utf8_validator::utf8_validator(method m) noexcept
    : simd_(m == method::simd || (m == method::best && available(method::simd))) {}

void utf8_validator::feed(std::string_view bytes) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    if (failed_ || bytes.empty()) return;  // an empty view may have no data: no memcpy from it
    if (!simd_) return feed_bytewise(p, end);
#if defined(AQ_UTF8_SIMD)
    std::size_t n = bytes.size();
    if (held_bytes_ > 0) {
        const std::size_t take = std::min(n, sizeof held_ - held_bytes_);
        std::memcpy(held_ + held_bytes_, p, take);
        held_bytes_ += take;
        p += take;
        n -= take;
        if (held_bytes_ < sizeof held_) return;
        held_bytes_ = 0;
        if (!check_blocks(held_, sizeof held_, prev_)) failed_ = true;
    }
    const std::size_t whole = n & ~std::size_t{31};
    if (whole > 0 && !check_blocks(p, whole, prev_)) failed_ = true;
    std::memcpy(held_, p + whole, n - whole);
    held_bytes_ = n - whole;
#endif
}

bool utf8_validator::complete() const noexcept {
    if (failed_) return false;
    if (!simd_) return need_ == 0;
#if defined(AQ_UTF8_SIMD)
    return check_last(held_, held_bytes_, prev_);
#else
    return false;
#endif
}

void utf8_validator::feed_bytewise(const unsigned char* p, const unsigned char* end) noexcept {
    while (p < end) {
        if (need_ == 0) {
            p = skip_ascii(p, end);
            if (p == end) return;
        }
        const unsigned char c = *p++;
        if (need_ == 0) {
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
                failed_ = true;
                return;
            }
        } else if (c < lo_ || c > hi_) {
            failed_ = true;
            return;
        } else {
            lo_ = 0x80;
            hi_ = 0xBF;
            --need_;
        }
    }
}

}  // namespace aq::batch_line
