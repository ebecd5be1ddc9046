// The minimum transfer rate (min_body_rate_bytes_per_s over body_rate_window_ms): a client that
// sends or reads a body slower than that is cut off with one log line, whatever the direction,
// while a handler that is slow to answer is not the client's fault and is never cut.
#define BOOST_TEST_MODULE min_rate
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "support/wait_until.hpp"
#include "testplug.hpp"

#include <atomic>
#include <cerrno>
#include <sys/socket.h>
#include <thread>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

boost::json::object rate_config(boost::json::object extra = {}) {
    extra["min_body_rate_bytes_per_s"] = 1000;
    if (!extra.contains("body_rate_window_ms")) extra["body_rate_window_ms"] = 1000;
    return aqt::with_testplug(std::move(extra));
}

// Sends `piece` bytes every `every` until `total` bytes went out, the peer closed, or `stop`.
void trickle(aqt::raw::connection& conn, std::size_t piece, std::chrono::milliseconds every, std::size_t total,
             const std::atomic<bool>& stop) {
    for (std::size_t sent = 0; sent < total && !stop; sent += piece) {
        if (!conn.send(std::string(std::min(piece, total - sent), 'x'))) return;
        std::this_thread::sleep_for(every);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_upload_slower_than_the_minimum_is_cut_with_one_log_line) {
    aqt::gateway gw(rate_config());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, 100000)));
    std::atomic<bool> stop{false};
    std::thread sender([&] { trickle(conn, 10, 100ms, 100000, stop); });  // 100 B/s
    const auto start = clock_type::now();
    auto r = conn.read_until_close(10s);
    stop = true;
    sender.join();
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
    BOOST_TEST((clock_type::now() - start < 8s));
    aqt::expect::error_envelope(aqt::raw::parse_response(r.data),
                                {408, "invalid_request_error", std::nullopt, std::nullopt,
                                 "The request body arrived too slowly."});
    BOOST_TEST(gw.wait_for_log("request body slower than 1000 bytes/s"));
    std::this_thread::sleep_for(200ms);
    BOOST_TEST(gw.log_count("slower than") == 1u, gw.log());
    BOOST_TEST(aqt::count_handler_starts(gw) == 0u);
}

BOOST_AUTO_TEST_CASE(an_upload_above_the_minimum_is_served) {
    // Windows of 3 s: a stall of this test's sender shorter than 2.7 s does not look like a slow
    // client.
    aqt::gateway gw(rate_config({{"body_rate_window_ms", 3000}}));
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, 30000)));
    std::atomic<bool> stop{false};
    trickle(conn, 1000, 100ms, 30000, stop);  // about 10000 B/s for 3 s: ten times the minimum
    auto res = aqt::raw::parse_response(conn.read_response(10s).data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("bytes") == 30000);
    BOOST_TEST(gw.log_count("slower than") == 0u, gw.log());
}

BOOST_AUTO_TEST_CASE(a_reader_slower_than_the_minimum_is_cut_and_its_source_released) {
    aqt::gateway gw(rate_config());
    aqt::raw::connection conn(gw.port(), {4096, ""});
    BOOST_TEST_REQUIRE(conn.send("GET /pull?bytes=100000000 HTTP/1.1\r\nHost: t\r\nAuthorization: " +
                                 gw.bearer("alice") + "\r\n\r\n"));
    const auto start = clock_type::now();
    bool closed = false;
    while (!closed && clock_type::now() - start < 20s) {  // 100 bytes every 200 ms: 500 B/s
        char buf[100];
        const ssize_t n = ::recv(conn.fd(), buf, sizeof buf, MSG_DONTWAIT);
        closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        std::this_thread::sleep_for(200ms);
    }
    BOOST_TEST(closed);
    BOOST_TEST((clock_type::now() - start < 15s));
    BOOST_TEST(gw.wait_for_log("response body slower than 1000 bytes/s"));
    BOOST_TEST(gw.log_count("slower than") == 1u, gw.log());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    BOOST_TEST(aqt::wait_until([&] { return c.get("/sources").json().at("open").as_int64() == 0; }, 10s));
}

BOOST_AUTO_TEST_CASE(a_stalled_reader_of_a_blocking_stream_is_cut_and_frees_the_worker) {
    // ABI 1.0 streaming holds the handler's thread while the client reads: the minimum rate is
    // what bounds it. One worker: after the cut it must be free again.
    aqt::gateway gw(rate_config({{"workers", 1}}));
    aqt::raw::connection conn(gw.port(), {4096, ""});
    BOOST_TEST_REQUIRE(conn.send("GET /stream?bytes=200000000 HTTP/1.1\r\nHost: t\r\nAuthorization: " +
                                 gw.bearer("alice") + "\r\n\r\n"));
    BOOST_TEST_REQUIRE(aqt::raw::to_string(conn.read_until("abcdef", 5s).how) == "data");
    BOOST_TEST(gw.wait_for_log("response body slower than 1000 bytes/s", 15s), gw.log());
    aqt::http::client c(gw.port(), 10s);
    BOOST_TEST(c.get("/whoami", {{"Authorization", gw.bearer("alice")}}).status == 200);
}

BOOST_AUTO_TEST_CASE(a_slow_handler_is_not_the_clients_fault) {
    aqt::gateway gw(rate_config());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto r = c.get("/busy?ms=2500");  // two and a half windows without a byte
    BOOST_TEST(r.status == 200);
    BOOST_TEST(gw.log_count("slower than") == 0u, gw.log());
}
