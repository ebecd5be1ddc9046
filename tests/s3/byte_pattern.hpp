// Reproducible pseudo-random bytes of any length, generated as they are read (an upload source
// that costs no memory), and a sink that hashes what it receives (a download that keeps nothing).
#pragma once

#include "support/digest.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace aqt {

class byte_pattern {
public:
    explicit byte_pattern(std::uint64_t seed, std::uint64_t length) : seed_(seed | 1), length_(length) { restart(); }

    void restart() {
        state_ = seed_;
        produced_ = 0;
        have_ = 0;
    }
    std::uint64_t length() const noexcept { return length_; }
    std::uint64_t produced() const noexcept { return produced_; }

    // Up to `cap` next bytes; 0 at the end.
    std::size_t read(char* out, std::size_t cap) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(cap, length_ - produced_));
        for (std::size_t i = 0; i < n;) {
            if (have_ == 0) {
                // xorshift64*
                state_ ^= state_ >> 12;
                state_ ^= state_ << 25;
                state_ ^= state_ >> 27;
                std::uint64_t v = state_ * 0x2545F4914F6CDD1Dull;
                std::memcpy(word_, &v, 8);
                have_ = 8;
            }
            std::size_t take = std::min<std::size_t>(have_, n - i);
            std::memcpy(out + i, word_ + (8 - have_), take);
            have_ -= take;
            i += take;
        }
        produced_ += n;
        return n;
    }

    std::string all() {
        std::string s(static_cast<std::size_t>(length_ - produced_), '\0');
        read(s.data(), s.size());
        return s;
    }

    // SHA-256 of the whole pattern (leaves the pattern restarted).
    std::string sha256_hex() {
        restart();
        aqt::sha256 h;
        std::string buf(1 << 20, '\0');
        while (std::size_t n = read(buf.data(), buf.size())) h.update(std::string_view(buf.data(), n));
        restart();
        return h.hex();
    }

private:
    std::uint64_t seed_, length_, state_ = 0, produced_ = 0;
    char word_[8] = {};
    std::size_t have_ = 0;
};

}  // namespace aqt
