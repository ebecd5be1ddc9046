// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash. With a secret random key, an
// uploader cannot craft custom_ids whose hashes collide, so the duplicate check's exact (and
// slower) confirmation runs only for real duplicates and chance collisions.
#pragma once

#include <cstdint>
#include <string_view>

namespace aq::batch_line {

struct siphash_key {
    std::uint64_t k0 = 0, k1 = 0;
    // A key from the OS's random source.
    static siphash_key random();
};

std::uint64_t siphash24(const siphash_key& key, std::string_view data) noexcept;

}  // namespace aq::batch_line
