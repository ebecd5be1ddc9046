// An idle keep-alive connection costs at most 8 KiB of the gateway's resident memory: buffers
// exist only while a request is in progress. 5,000 connections each served one request and left
// open; the growth of VmRSS is divided among them.
#define BOOST_TEST_MODULE idle_connections
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <memory>
#include <thread>

using namespace std::chrono_literals;

namespace {

using connections = std::vector<std::unique_ptr<aqt::raw::connection>>;

void open_served(const aqt::gateway& gw, connections& out, int n) {
    for (int i = 0; i < n; ++i) {
        auto conn = std::make_unique<aqt::raw::connection>(gw.port());
        BOOST_TEST_REQUIRE(conn->send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
        BOOST_TEST_REQUIRE(aqt::raw::to_string(conn->read_response(5s).how) == "data");
        out.push_back(std::move(conn));
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_idle_keep_alive_connection_costs_at_most_8_kib) {
    constexpr int n = 5000;
    BOOST_TEST_REQUIRE(aqt::raise_open_file_limit(n + 1000) >= static_cast<std::uint64_t>(n + 500));
    aqt::gateway gw(aqt::with_testplug({{"idle_timeout_ms", 600000}}));
    connections open;
    open_served(gw, open, 200);  // the allocator's arenas and caches are warm after these
    std::this_thread::sleep_for(300ms);
    const auto before = aqt::resident_bytes(gw.pid());
    open_served(gw, open, n);
    std::this_thread::sleep_for(300ms);
    const auto after = aqt::resident_bytes(gw.pid());
    const double per_connection = (static_cast<double>(after) - static_cast<double>(before)) / n;
    BOOST_TEST_MESSAGE("RSS " << before / 1024 << " KiB -> " << after / 1024 << " KiB: " << per_connection
                              << " bytes per idle connection");
    BOOST_TEST(per_connection <= 8192.0);
    // They are all still open and usable.
    for (auto* c : {open.front().get(), open.back().get()}) {
        BOOST_TEST_REQUIRE(c->send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
        BOOST_TEST(aqt::raw::parse_response(c->read_response(5s).data).status == 200);
    }
}
