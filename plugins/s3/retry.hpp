// How long to wait before trying a failed S3 request again.
//
// Exponential backoff with "equal jitter": the n-th wait is half of min(max_delay, base_delay *
// 2^(n-1)) plus a uniformly random share of the other half. The fixed half guarantees the waits
// grow (a throttled server gets real relief); the random half spreads out hosts and threads that
// failed at the same moment, so they do not retry in lockstep.
#pragma once

#include <chrono>
#include <cstdint>

namespace aq::s3 {

struct retry_policy {
    unsigned max_attempts = 4;                      // attempts in all, the first included (>= 1)
    std::chrono::milliseconds base_delay{100};
    std::chrono::milliseconds max_delay{5000};
};

// The wait after failed attempt number `attempt` (1-based). `random` is any uniformly distributed
// 64-bit value (tests pass fixed ones).
std::chrono::milliseconds backoff_delay(const retry_policy& policy, unsigned attempt, std::uint64_t random);

// A random 64-bit value from a per-thread generator, for backoff_delay.
std::uint64_t backoff_random();

}  // namespace aq::s3
