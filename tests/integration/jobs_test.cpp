// Periodic jobs registered by a plugin run on schedule in the real host.
#define BOOST_TEST_MODULE jobs
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

// Polls GET /jobs until the run counter reaches `at_least`; returns the last count seen.
std::uint64_t wait_for_runs(aqt::http::client& c, std::uint64_t at_least, std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    std::uint64_t runs = 0;
    do {
        runs = c.get("/jobs").json().at("runs").to_number<std::uint64_t>();
        if (runs >= at_least) break;
        std::this_thread::sleep_for(20ms);
    } while (clock_type::now() < deadline);
    return runs;
}

}  // namespace


BOOST_AUTO_TEST_CASE(periodic_job_runs_repeatedly) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto first = wait_for_runs(c, 1, 5s);
    BOOST_TEST_REQUIRE(first >= 1u);
    // Every 20 ms: five more runs take about 100 ms; 5 s leaves room for a loaded machine.
    BOOST_TEST(wait_for_runs(c, first + 5, 5s) >= first + 5);
}

BOOST_AUTO_TEST_CASE(jobs_run_while_every_worker_is_busy) {
    // One worker, held by a request for 4 s: the job (every 20 ms) has threads of its own, and
    // runs about 200 times meanwhile, at least 5 however loaded the machine.
    aqt::gateway gw(aqt::with_testplug({{"workers", 1}}));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    wait_for_runs(c, 1, 5s);
    auto r = c.get("/busy?ms=4000");
    BOOST_TEST_REQUIRE(r.status == 200);
    BOOST_TEST(r.json().at("job_runs_during").to_number<std::uint64_t>() >= 5u, r.body);
}
