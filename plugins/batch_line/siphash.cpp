#include "batch_line/siphash.hpp"

#include <bit>
#include <cstring>
#include <random>

namespace aq::batch_line {
namespace {

struct state {
    std::uint64_t v0, v1, v2, v3;

    void round() noexcept {
        v0 += v1;
        v1 = std::rotl(v1, 13);
        v1 ^= v0;
        v0 = std::rotl(v0, 32);
        v2 += v3;
        v3 = std::rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = std::rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = std::rotl(v1, 17);
        v1 ^= v2;
        v2 = std::rotl(v2, 32);
    }
    void compress(std::uint64_t m) noexcept {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

std::uint64_t load_le64(const unsigned char* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

siphash_key siphash_key::random() {
    std::random_device device;
    auto draw = [&] { return (std::uint64_t(device()) << 32) | device(); };
    return {draw(), draw()};
}

std::uint64_t siphash24(const siphash_key& key, std::string_view data) noexcept {
    state s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull, key.k0 ^ 0x6c7967656e657261ull,
            key.k1 ^ 0x7465646279746573ull};
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    for (; n >= 8; n -= 8, p += 8) s.compress(load_le64(p));
    // The last block: the remaining bytes, and the length's low byte on top.
    unsigned char last[8] = {};
    std::memcpy(last, p, n);
    last[7] = static_cast<unsigned char>(data.size());
    s.compress(load_le64(last));
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace aq::batch_line
