#include "sql/pool_metrics.hpp"

#include <array>
#include <chrono>
#include <string>

namespace aq::sql {

void count_pool_waits(const aq::host& host, std::string_view prefix, pool_options& options) {
    const std::string p(prefix);
    auto waits = host.counter_family(p + "_db_pool_waits_total",
                                     "Leases that found no free database session and waited, by outcome.", {"outcome"});
    // From a millisecond (a session returned a moment later) to the longest session_wait_ms.
    static constexpr std::array<double, 10> buckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};
    auto wait_time = host.histogram(p + "_db_pool_wait_seconds", "Time leases waited for a free database session.",
                                    buckets);
    options.on_wait = [leased = waits.with({"leased"}), timed_out = waits.with({"timed_out"}),
                       wait_time](std::chrono::steady_clock::duration waited, bool got) {
        (got ? leased : timed_out).inc();
        wait_time.observe(std::chrono::duration<double>(waited).count());
    };
}

}  // namespace aq::sql
