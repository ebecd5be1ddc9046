// Periodic jobs registered by a plugin run on schedule in the real host.
#define BOOST_TEST_MODULE jobs
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(periodic_job_runs_repeatedly) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    std::this_thread::sleep_for(200ms);
    auto first = c.get("/jobs").json().at("runs").to_number<std::uint64_t>();
    std::this_thread::sleep_for(300ms);
    auto second = c.get("/jobs").json().at("runs").to_number<std::uint64_t>();
    BOOST_TEST(first >= 2u);   // every 20 ms: about 10 runs in 200 ms
    BOOST_TEST(second >= first + 5);
}
