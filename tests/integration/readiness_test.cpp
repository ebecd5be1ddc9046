// GET /readyz: 200 only while every plugin's readiness check says so (ABI 1.2); /healthz stays
// liveness. testplug's check answers what POST /readiness told it; the checks run every
// readiness_interval_ms (100 here), so a change shows within a few intervals.
#define BOOST_TEST_MODULE readiness
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// Polls /readyz until it answers `status`; returns the last answer.
aqt::http::response readyz_until(const aqt::gateway& gw, int status, std::chrono::milliseconds within = 5s) {
    aqt::http::client c(gw.port());
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
        auto r = c.get("/readyz");
        if (r.status == status || std::chrono::steady_clock::now() >= deadline) return r;
        std::this_thread::sleep_for(20ms);
    }
}

json::object fast_checks() { return aqt::with_testplug({{"readiness_interval_ms", 100}}); }

}  // namespace

BOOST_AUTO_TEST_CASE(ready_when_every_plugin_says_so) {
    aqt::gateway gw(fast_checks());
    aqt::http::client c(gw.port());
    auto r = c.get("/readyz");
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"status":"ready"})");
    BOOST_TEST(r.header("content-type") == "application/json");
    BOOST_TEST(c.get("/v1/readyz").status == 200);
    auto posted = c.post("/readyz", "");
    BOOST_TEST(posted.status == 405);
    BOOST_TEST(posted.header("allow") == "GET");
}

BOOST_AUTO_TEST_CASE(a_plugin_that_is_not_ready_makes_readyz_503_but_not_healthz) {
    aqt::gateway gw(fast_checks());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    BOOST_TEST(c.post("/readiness?ready=0", "").status == 200);
    auto r = readyz_until(gw, 503);
    BOOST_TEST(r.status == 503);
    BOOST_TEST(r.body == R"({"status":"unavailable","not_ready":["testplug"]})");
    BOOST_TEST(c.get("/healthz").status == 200);
    BOOST_TEST(c.get("/whoami").status == 200);  // readiness informs load balancers; requests are still served
    BOOST_TEST(gw.wait_for_log("plugin testplug is not ready: /readyz answers 503"));

    BOOST_TEST(c.post("/readiness?ready=1", "").status == 200);
    r = readyz_until(gw, 200);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"status":"ready"})");
    BOOST_TEST(gw.wait_for_log("plugin testplug is ready again"));
}

BOOST_AUTO_TEST_CASE(a_check_that_hangs_counts_as_not_ready_until_it_answers) {
    aqt::gateway gw(fast_checks());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    // The next check blocks 6 s: after three intervals without an answer, the old "ready" is stale
    // (long before the 6 s end, which leave room for a loaded machine).
    BOOST_TEST(c.post("/readiness?ready=1&hang_ms=6000", "").status == 200);
    const auto asked = std::chrono::steady_clock::now();
    auto r = readyz_until(gw, 503);
    BOOST_TEST(r.status == 503);
    BOOST_TEST(r.body == R"({"status":"unavailable","not_ready":["testplug"]})");
    BOOST_TEST((std::chrono::steady_clock::now() - asked < 5s));
    r = readyz_until(gw, 200, 20s);
    BOOST_TEST(r.status == 200);
}

BOOST_AUTO_TEST_CASE(plugins_without_a_check_are_ready_once_initialised) {
    // abi10plug was built against ABI 1.0: it has no readiness check.
    aqt::gateway gw(json::object{{"plugins", {{"abi10plug", {{"enabled", true}}}}}});
    aqt::http::client c(gw.port());
    auto r = c.get("/readyz");
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"status":"ready"})");
}
