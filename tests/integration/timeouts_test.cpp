// Header-read and idle timeouts: a client that stalls loses its connection, one that is merely
// slow but finishes in time is served.
#define BOOST_TEST_MODULE timeouts
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {
// Milliseconds since `start`, as a plain number Boost.Test can print.
long long ms_since(clock_type::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
}
}  // namespace

BOOST_AUTO_TEST_CASE(partial_header_is_closed_after_the_header_timeout) {
    aqt::gateway gw(aqt::with_testplug({{"header_timeout_ms", 300}}));
    aqt::raw::connection conn(gw.port());
    auto start = clock_type::now();
    BOOST_TEST_REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: t\r\n"));  // never finished
    auto r = conn.read_until_close(5s);
    auto waited = ms_since(start);
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
    BOOST_TEST(r.data.find("200") == std::string::npos, r.data);
    BOOST_TEST(waited >= 250);
    BOOST_TEST(waited < 3000);
}

BOOST_AUTO_TEST_CASE(silent_connection_is_closed_after_the_header_timeout) {
    aqt::gateway gw(aqt::with_testplug({{"header_timeout_ms", 300}}));
    aqt::raw::connection conn(gw.port());
    auto start = clock_type::now();
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
    BOOST_TEST(r.data.empty());
    BOOST_TEST(ms_since(start) < 3000);
}

BOOST_AUTO_TEST_CASE(slow_but_complete_header_is_served) {
    aqt::gateway gw(aqt::with_testplug({{"header_timeout_ms", 2000}}));
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET /healthz HTTP/1.1\r\n"));
    std::this_thread::sleep_for(300ms);
    BOOST_TEST_REQUIRE(conn.send("Host: t\r\n"));
    std::this_thread::sleep_for(300ms);
    BOOST_TEST_REQUIRE(conn.send("\r\n"));
    auto res = aqt::raw::parse_response(conn.read_response(5s).data);
    BOOST_TEST(res.status == 200);
}

BOOST_AUTO_TEST_CASE(idle_keep_alive_connection_is_closed_after_the_idle_timeout) {
    aqt::gateway gw(aqt::with_testplug({{"idle_timeout_ms", 300}}));
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto first = conn.read_response(5s);
    BOOST_TEST(aqt::raw::parse_response(first.data).status == 200);
    auto start = clock_type::now();
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
    BOOST_TEST(r.data.empty());
    BOOST_TEST(ms_since(start) >= 250);
    BOOST_TEST(ms_since(start) < 3000);
}

BOOST_AUTO_TEST_CASE(header_timeout_applies_to_a_later_request_on_a_keep_alive_connection) {
    // The idle timeout covers the wait for a next request; once its first byte came, the head
    // must be complete within header_timeout_ms, as for the first request.
    aqt::gateway gw(aqt::with_testplug({{"header_timeout_ms", 300}, {"idle_timeout_ms", 60000}}));
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    BOOST_TEST(aqt::raw::parse_response(conn.read_response(5s).data).status == 200);
    std::this_thread::sleep_for(500ms);  // idle longer than the header timeout: still open
    auto start = clock_type::now();
    BOOST_TEST_REQUIRE(conn.send("GET /healthz HTTP/1.1\r\n"));  // and then a byte a while
    bool closed = false;
    while (!closed && clock_type::now() - start < 5s) {
        closed = !conn.send("X") || conn.read_for(100ms).how == aqt::raw::ending::closed;
    }
    BOOST_TEST(closed);
    BOOST_TEST(ms_since(start) >= 250);
    BOOST_TEST(ms_since(start) < 3000);
}
