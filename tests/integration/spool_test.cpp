// Request bodies are read completely before a handler runs: small ones in memory, large ones in
// an unnamed file in spool_dir, all of them within max_spool_bytes. A client that vanishes
// mid-body never reaches a handler.
#define BOOST_TEST_MODULE spool
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "support/wait_until.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!f()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_client_vanishing_mid_body_never_reaches_a_handler) {
    aqt::gateway gw(aqt::with_testplug({{"workers", 1}}));
    for (int i = 0; i < 5; ++i) {
        aqt::raw::connection conn(gw.port());
        BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, 1000000) + std::string(200000, 'a')));
        conn.read_for(50ms);
    }
    BOOST_TEST(aqt::count_handler_starts(gw) == 0u);
    aqt::http::client c(gw.port());
    auto r = c.post("/count", std::string(300000, 'b'), {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.json().at("sha256").as_string() == aqt::sha256_hex(std::string(300000, 'b')));
    BOOST_TEST(aqt::count_handler_starts(gw) == 1u);
}

BOOST_AUTO_TEST_CASE(a_large_body_waits_in_an_unnamed_file_and_a_small_one_in_memory) {
    aqt::gateway gw(aqt::with_testplug({{"spool_dir", "."}}));
    const std::string body(1 << 20, 'z');
    aqt::raw::connection small(gw.port());
    BOOST_TEST_REQUIRE(small.send(aqt::count_upload_head(gw, 1000) + body.substr(0, 500)));
    aqt::raw::connection large(gw.port());
    BOOST_TEST_REQUIRE(large.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 600000)));
    BOOST_TEST(eventually([&] { return aqt::spool_files(gw) == 1; }), "spool files: " << aqt::spool_files(gw));
    BOOST_TEST(aqt::count_handler_starts(gw) == 0u);  // neither body is complete

    BOOST_TEST_REQUIRE(large.send(body.substr(600000)));
    auto res = aqt::raw::parse_response(large.read_response(10s).data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("sha256").as_string() == aqt::sha256_hex(body));
    BOOST_TEST(eventually([&] { return aqt::spool_files(gw) == 0; }));  // closed, so gone

    BOOST_TEST_REQUIRE(small.send(body.substr(0, 500)));
    BOOST_TEST(aqt::raw::parse_response(small.read_response(10s).data).json().at("bytes") == 1000);
}

BOOST_AUTO_TEST_CASE(a_spool_dir_without_room_for_files_refuses_to_start) {
    auto failure = aqt::expect_startup_failure(aqt::with_testplug({{"spool_dir", "/nonexistent/spool"}}));
    BOOST_TEST(failure.status.exited);
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find("spool_dir /nonexistent/spool: cannot create a temporary file") != std::string::npos,
               failure.log);
}

BOOST_AUTO_TEST_CASE(bodies_beyond_the_spool_budget_get_503_with_retry_after) {
    aqt::gateway gw(aqt::with_testplug({{"max_spool_bytes", 100000}}));
    aqt::raw::connection first(gw.port());
    BOOST_TEST_REQUIRE(first.send(aqt::count_upload_head(gw, 80000) + std::string(1000, 'a')));
    std::this_thread::sleep_for(100ms);  // its 80000 bytes are reserved once the head is read

    aqt::raw::connection second(gw.port());
    BOOST_TEST_REQUIRE(second.send(aqt::count_upload_head(gw, 50000)));
    auto refused = aqt::raw::parse_response(second.read_response(5s).data);
    aqt::expect::error_envelope(refused, {503, "server_error", "overloaded", std::nullopt,
                                          "The server is receiving too many request bodies at once. Retry later."});
    BOOST_TEST(refused.header("retry-after") == "1");

    // A chunked body reserves as it grows: refused when it crosses the budget, then closed.
    aqt::raw::connection chunked(gw.port());
    BOOST_TEST_REQUIRE(chunked.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                    "\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n" + std::string(0x8000, 'c') + "\r\n"));
    auto cut = chunked.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(cut.how) != "timeout");
    BOOST_TEST(aqt::raw::parse_response(cut.data).status == 503);

    BOOST_TEST_REQUIRE(first.send(std::string(79000, 'a')));
    BOOST_TEST(aqt::raw::parse_response(first.read_response(10s).data).status == 200);
    // The first body's reservation comes back when its handler returns, a moment after the
    // client has its response: retry for a little while, as the retry-after told the client to.
    aqt::http::client c(gw.port());
    BOOST_TEST(aqt::wait_until(
        [&] { return c.post("/count", std::string(50000, 'd'), {{"Authorization", gw.bearer("alice")}}).status == 200; },
        10s));
}
