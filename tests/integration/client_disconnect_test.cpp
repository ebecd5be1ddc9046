// Clients that vanish mid-request: the handler is told (read_body/write fail), unwinds, and its
// worker is free again. With a single worker, the next request proves it.
#define BOOST_TEST_MODULE client_disconnect
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

using namespace std::chrono_literals;

namespace {

aqt::gateway single_worker_gateway() { return aqt::gateway(aqt::with_testplug({{"workers", 1}})); }

void served_by_the_only_worker(const aqt::gateway& gw) {
    aqt::http::client c(gw.port(), 10s);
    auto r = c.get("/whoami", {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST(r.status == 200);
}

}  // namespace

BOOST_AUTO_TEST_CASE(client_vanishing_mid_upload_frees_the_worker) {
    auto gw = single_worker_gateway();
    {
        aqt::raw::connection conn(gw.port());
        BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                     "\r\nContent-Length: 1000000\r\n\r\n" + std::string(1000, 'a')));
        conn.read_for(200ms);  // the handler is now waiting for the rest
    }  // closed with 999000 bytes missing
    served_by_the_only_worker(gw);
    BOOST_TEST(gw.running());
}

BOOST_AUTO_TEST_CASE(client_vanishing_mid_chunked_upload_frees_the_worker) {
    auto gw = single_worker_gateway();
    {
        aqt::raw::connection conn(gw.port());
        BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                     "\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + std::string(1024, 'b') +
                                     "\r\n400\r\n" + std::string(100, 'b')));
        conn.read_for(200ms);
    }
    served_by_the_only_worker(gw);
}

BOOST_AUTO_TEST_CASE(client_vanishing_mid_download_frees_the_worker) {
    auto gw = single_worker_gateway();
    {
        aqt::raw::connection conn(gw.port());
        BOOST_TEST_REQUIRE(conn.send("GET /stream?bytes=4294967296 HTTP/1.1\r\nHost: t\r\nAuthorization: " +
                                     gw.bearer("alice") + "\r\n\r\n"));
        auto first = conn.read_until("abcdefghij", 5s);  // only the start of 4 GiB
        BOOST_TEST_REQUIRE(aqt::raw::to_string(first.how) == "data");
    }
    served_by_the_only_worker(gw);
}

BOOST_AUTO_TEST_CASE(body_that_stops_arriving_times_out) {
    aqt::gateway gw(aqt::with_testplug({{"workers", 1}, {"body_timeout_ms", 300}}));
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nContent-Length: 100\r\n\r\nonly ten b"));
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout", r.data);
    served_by_the_only_worker(gw);
}
