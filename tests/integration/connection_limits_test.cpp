// Connection limits and descriptor exhaustion: over max_connections or max_connections_per_ip a
// new connection gets a 503 and is closed at once; when accept fails for lack of descriptors
// (a low RLIMIT_NOFILE set by the test, in the child before exec) the listener pauses instead
// of spinning, logs once per interval, and serves again as soon as connections close.
#define BOOST_TEST_MODULE connection_limits
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <memory>
#include <thread>

using namespace std::chrono_literals;

namespace {

using connections = std::vector<std::unique_ptr<aqt::raw::connection>>;

// A connection that was served a request (so it is accepted and counted by the server).
std::unique_ptr<aqt::raw::connection> served(const aqt::gateway& gw, const std::string& source = "") {
    auto conn = std::make_unique<aqt::raw::connection>(gw.port(), aqt::raw::connection_options{0, source});
    BOOST_TEST_REQUIRE(conn->send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    BOOST_TEST_REQUIRE(aqt::raw::parse_response(conn->read_response(5s).data).status == 200);
    return conn;
}

// What a refused connection reads: one 503 envelope, then the close.
void refused(const aqt::gateway& gw, const std::string& message, const std::string& source = "") {
    aqt::raw::connection conn(gw.port(), {0, source});
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
    auto res = aqt::raw::parse_response(r.data);
    aqt::expect::error_envelope(res, {503, "server_error", "overloaded", std::nullopt, message});
    BOOST_TEST(res.header("retry-after") == "1");
}

bool serves_again(const aqt::gateway& gw, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            aqt::http::client c(gw.port(), 2s);
            if (c.get("/healthz").status == 200) return true;
        } catch (const std::exception&) {
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(connections_over_max_connections_get_503_and_are_closed) {
    aqt::gateway gw(aqt::with_testplug({{"max_connections", 20}}));
    connections open;
    for (int i = 0; i < 20; ++i) open.push_back(served(gw));
    for (int i = 0; i < 30; ++i) refused(gw, "The server has too many open connections. Retry later.");
    // One log line for the burst, not thirty.
    BOOST_TEST(gw.log_count("refused a connection: max_connections (20) are open") == 1u, gw.log());
    open.pop_back();
    BOOST_TEST(serves_again(gw, 5s));
}

BOOST_AUTO_TEST_CASE(connections_over_the_per_address_limit_get_503_and_other_addresses_are_served) {
    aqt::gateway gw(aqt::with_testplug({{"max_connections_per_ip", 5}}));
    connections open;
    for (int i = 0; i < 5; ++i) open.push_back(served(gw, "127.0.0.1"));
    refused(gw, "Too many open connections from your address. Retry later.", "127.0.0.1");
    for (int i = 0; i < 5; ++i) open.push_back(served(gw, "127.0.0.2"));  // another address
    BOOST_TEST(gw.wait_for_log("refused a connection from 127.0.0.1: max_connections_per_ip (5) are open"));
    open.erase(open.begin());
    BOOST_TEST(serves_again(gw, 5s));
}

BOOST_AUTO_TEST_CASE(out_of_descriptors_the_listener_pauses_logs_rarely_and_recovers) {
    aqt::gateway_options options;
    options.config = aqt::with_testplug({{"header_timeout_ms", 60000}, {"max_connections", 100000}});
    options.max_open_files = 64;
    aqt::gateway gw(options);
    BOOST_TEST(gw.log().find("does not fit the open file limit of 64") != std::string::npos, gw.log());

    // Far more clients than descriptors: the kernel completes their handshakes into the
    // backlog, and accept fails with EMFILE for all but the first few dozen.
    connections clients;
    for (int i = 0; i < 300; ++i) clients.push_back(std::make_unique<aqt::raw::connection>(gw.port()));
    BOOST_TEST_REQUIRE(gw.wait_for_log("accept failed: Too many open files", 5s), gw.log());

    const double cpu_before = aqt::cpu_seconds(gw.pid());
    std::this_thread::sleep_for(3s);
    const double cpu = aqt::cpu_seconds(gw.pid()) - cpu_before;
    BOOST_TEST_MESSAGE("CPU of aqueductd over 3 s at the descriptor limit: " << cpu << " s");
    BOOST_TEST(cpu < 0.3);  // a spinning acceptor burns ~3 s here
    BOOST_TEST(gw.log_count("accept failed") <= 2u, gw.log());

    clients.clear();
    BOOST_TEST(serves_again(gw, 10s));
}
