// Backoff: grows exponentially to its cap, with jitter only in the upper half.
#include <boost/test/unit_test.hpp>

#include "s3/retry.hpp"

#include <set>

using namespace aq::s3;
using ms = std::chrono::milliseconds;

BOOST_AUTO_TEST_SUITE(retry)

BOOST_AUTO_TEST_CASE(delays_double_within_equal_jitter_bounds_up_to_the_cap) {
    retry_policy p{6, ms(100), ms(1000)};
    // attempt n: ceiling min(1000, 100 * 2^(n-1)); the delay lies in [ceiling/2, ceiling].
    const long ceilings[] = {100, 200, 400, 800, 1000, 1000};
    for (unsigned n = 1; n <= 6; ++n) {
        long c = ceilings[n - 1];
        BOOST_TEST(backoff_delay(p, n, 0).count() == c / 2);                          // smallest random value
        BOOST_TEST(backoff_delay(p, n, static_cast<std::uint64_t>(c - c / 2)).count() == c);  // largest
        for (std::uint64_t r : {1ull, 17ull, 123456789ull, ~0ull}) {
            long d = backoff_delay(p, n, r).count();
            BOOST_TEST(d >= c / 2);
            BOOST_TEST(d <= c);
        }
    }
    BOOST_TEST(backoff_delay(p, 1000, 0).count() == 500);  // no overflow however many attempts
}

BOOST_AUTO_TEST_CASE(jitter_spreads_threads_apart) {
    retry_policy p{4, ms(1000), ms(8000)};
    std::set<long> seen;
    for (int i = 0; i < 50; ++i) seen.insert(backoff_delay(p, 3, backoff_random()).count());
    BOOST_TEST(seen.size() > 40u);  // 2001 possible values; 50 draws almost never repeat much
}

BOOST_AUTO_TEST_CASE(zero_base_delay_never_waits) {
    retry_policy p{4, ms(0), ms(0)};
    BOOST_TEST(backoff_delay(p, 3, backoff_random()).count() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
