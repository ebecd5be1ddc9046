// Deterministic test content: bytes of every value, in a sequence (xorshift32) that does not
// repeat at chunk boundaries, so a chunk stored at the wrong offset or twice shows. Different
// seeds give different contents.
#pragma once

#include <cstdint>
#include <string>

namespace aqt {

inline std::string pattern_bytes(std::size_t n, std::uint32_t seed = 0) {
    std::string s(n, '\0');
    std::uint32_t x = 2463534242u ^ seed;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return s;
}

}  // namespace aqt
