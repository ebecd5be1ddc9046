// How a fuzz target cuts its input into the pieces a socket could deliver.
//
// The cuts are pseudo-random but seeded by the input itself (FNV-1a of its bytes), so a crashing
// input replays with exactly the same cuts, and every input is also tried whole: the targets
// compare the two runs. Piece sizes mix single bytes (every state boundary), small sizes and
// large ones, because parsers go wrong where a token straddles two reads.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace aq::fuzz {

class piece_plan {
public:
    explicit piece_plan(std::string_view seed_bytes) {
        std::uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char c : seed_bytes) h = (h ^ c) * 0x100000001b3ull;
        rng_.seed(h);
    }

    // A number in [0, bound); 0 when bound is 0.
    std::uint64_t below(std::uint64_t bound) {
        return bound == 0 ? 0 : std::uniform_int_distribution<std::uint64_t>(0, bound - 1)(rng_);
    }

    // One of the given values.
    template <class T, std::size_t N>
    T pick(const T (&values)[N]) {
        return values[below(N)];
    }

    // The sizes of the pieces `total` bytes are cut into (each at least 1, summing to `total`).
    std::vector<std::size_t> sizes(std::size_t total) {
        std::vector<std::size_t> out;
        while (total > 0) {
            std::size_t n = 0;
            switch (below(4)) {
            case 0: n = 1; break;
            case 1: n = 1 + below(8); break;
            case 2: n = 1 + below(64); break;
            default: n = 1 + below(total); break;
            }
            if (n > total) n = total;
            out.push_back(n);
            total -= n;
        }
        return out;
    }

    // `data` cut into pieces of sizes(data.size()).
    std::vector<std::string_view> cut(std::string_view data) {
        std::vector<std::string_view> out;
        for (std::size_t n : sizes(data.size())) {
            out.push_back(data.substr(0, n));
            data.remove_prefix(n);
        }
        return out;
    }

private:
    std::mt19937_64 rng_;
};

}  // namespace aq::fuzz
