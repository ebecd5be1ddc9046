// A streaming UTF-8 validator: bytes can be fed in pieces split inside a character.
// Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace aq::batch_line {

class utf8_validator {
public:
    // False at the first invalid byte; the validator then stays invalid.
    bool feed(std::string_view bytes) noexcept {
        const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
        const auto* end = p + bytes.size();
        while (p < end) {
            if (!valid_) return false;
            // ASCII runs, 8 bytes at a time: the common case costs one load and one test.
            if (need_ == 0) {
                while (end - p >= 8) {
                    std::uint64_t word;
                    std::memcpy(&word, p, 8);
                    if (word & 0x8080808080808080ull) break;
                    p += 8;
                }
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
