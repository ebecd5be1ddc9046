#include "retry.hpp"

#include <algorithm>
#include <random>

namespace aq::s3 {

std::chrono::milliseconds backoff_delay(const retry_policy& policy, unsigned attempt, std::uint64_t random) {
    using ms = std::chrono::milliseconds;
    ms cap = policy.max_delay;
    ms grown = policy.base_delay;
    for (unsigned i = 1; i < attempt && grown < cap; ++i) grown *= 2;
    ms ceiling = std::min(grown, cap);
    auto half = ceiling.count() / 2;
    auto spread = ceiling.count() - half;  // the random share, in [0, spread]
    return ms(half + static_cast<ms::rep>(random % static_cast<std::uint64_t>(spread + 1)));
}

std::uint64_t backoff_random() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return rng();
}

}  // namespace aq::s3
