// Graceful shutdown on SIGTERM/SIGINT: stop accepting, let in-flight requests finish up to
// shutdown_timeout_ms, stop jobs, shut plugins down, exit 0.
#define BOOST_TEST_MODULE shutdown
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <csignal>
#include <future>
#include <thread>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// Milliseconds since `start`, as a plain number Boost.Test can print.
long long ms_since(clock_type::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
}

// Starts GET /slow?ms=N on its own connection; the future holds the response or the error.
std::future<aqt::http::response> slow_request(const aqt::gateway& gw, int ms) {
    return std::async(std::launch::async, [port = gw.port(), auth = gw.bearer("alice"), ms] {
        aqt::http::client c(port);
        return c.get("/slow?ms=" + std::to_string(ms), {{"Authorization", auth}});
    });
}

// Waits until the slow request's handler runs (testplug logs it), so it is in flight when the
// signal arrives.
void wait_until_in_flight(const aqt::gateway& gw, int ms) {
    BOOST_TEST_REQUIRE(gw.wait_for_log("slow request started: " + std::to_string(ms) + " ms", 10s), gw.log());
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigterm_lets_the_in_flight_request_finish) {
    aqt::gateway gw(aqt::with_testplug());
    auto pending = slow_request(gw, 1500);
    wait_until_in_flight(gw, 1500);
    gw.signal(SIGTERM);
    auto r = pending.get();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"slept_ms":1500})");
    auto st = gw.wait_exit(10s);
    BOOST_TEST(st.exited);
    BOOST_TEST(st.code == 0);
    std::string log = gw.log();
    BOOST_TEST(log.find("received SIGTERM") != std::string::npos, log);
    BOOST_TEST(log.find("testplug shut down") != std::string::npos, log);
    BOOST_TEST(log.find("stopped") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(sigint_shuts_down_like_sigterm) {
    aqt::gateway gw(aqt::with_testplug());
    auto pending = slow_request(gw, 800);
    wait_until_in_flight(gw, 800);
    gw.signal(SIGINT);
    BOOST_TEST(pending.get().status == 200);
    auto st = gw.wait_exit(10s);
    BOOST_TEST(st.success(), st.describe());
    BOOST_TEST(gw.log().find("received SIGINT") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(new_connections_are_refused_while_draining) {
    aqt::gateway gw(aqt::with_testplug());
    auto pending = slow_request(gw, 2000);
    wait_until_in_flight(gw, 2000);
    gw.signal(SIGTERM);
    BOOST_TEST_REQUIRE(gw.wait_for_log("received SIGTERM", 5s));
    std::this_thread::sleep_for(100ms);
    bool served = false;
    try {
        aqt::http::client c(gw.port(), 2s);
        served = c.get("/healthz").status == 200;
    } catch (const std::exception&) {
        // refused or closed: what we want
    }
    BOOST_TEST(!served);
    BOOST_TEST(pending.get().status == 200);
    BOOST_TEST(gw.wait_exit(10s).success());
}

BOOST_AUTO_TEST_CASE(idle_keep_alive_connections_do_not_delay_shutdown) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client idle(gw.port());
    BOOST_TEST(idle.get("/healthz").status == 200);
    auto start = clock_type::now();
    gw.signal(SIGTERM);
    BOOST_TEST(gw.wait_exit(20s).success());
    // Far below the 30 s shutdown_timeout that an idle connection counted as in flight would
    // cost, and far above a loaded machine's (or LeakSanitizer's) exit.
    BOOST_TEST(ms_since(start) < 10000);
}

BOOST_AUTO_TEST_CASE(requests_past_the_shutdown_deadline_are_cut_off) {
    // /slow does not poll stopping(): the host cannot end the handler, but it disconnects the
    // client at the deadline, and exits once the handler has returned.
    aqt::gateway gw(aqt::with_testplug({{"shutdown_timeout_ms", 300}}));
    auto pending = slow_request(gw, 8000);
    wait_until_in_flight(gw, 8000);
    auto start = clock_type::now();
    gw.signal(SIGTERM);
    bool answered = false;
    try {
        answered = pending.get().status == 200;
    } catch (const std::exception&) {
    }
    auto cut_after = ms_since(start);
    BOOST_TEST(!answered);
    BOOST_TEST(cut_after >= 250);
    BOOST_TEST(cut_after < 6000);  // cut at the deadline, not at the handler's end (8 s)
    auto st = gw.wait_exit(20s);
    BOOST_TEST(st.success(), st.describe());
    BOOST_TEST(gw.log().find("still in flight at the deadline") != std::string::npos, gw.log());
}
