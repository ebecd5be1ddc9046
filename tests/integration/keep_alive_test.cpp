// HTTP/1.1 persistent connections through the real server.
#define BOOST_TEST_MODULE keep_alive
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(several_requests_share_one_connection) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");

    BOOST_TEST(c.get("/whoami").status == 200);
    auto echo = c.post("/echo", "first body");
    BOOST_TEST(echo.status == 200);
    BOOST_TEST(echo.body == "first body");
    auto stream = c.get("/stream?bytes=100000");
    BOOST_TEST(stream.status == 200);
    BOOST_TEST(stream.body == aqt::stream_pattern(100000));
    BOOST_TEST(c.get("/no/such/route").status == 404);
    BOOST_TEST(c.post("/echo", "after the 404").body == "after the 404");
    BOOST_TEST(c.get("/healthz").status == 200);

    BOOST_TEST(c.connections() == 1);
    BOOST_TEST(c.connected());
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    std::string auth = "Authorization: " + gw.bearer("alice") + "\r\n";
    BOOST_TEST_REQUIRE(conn.send("POST /echo HTTP/1.1\r\nHost: t\r\n" + auth + "Content-Length: 3\r\n\r\none" +
                                 "GET /items/two HTTP/1.1\r\nHost: t\r\n" + auth + "\r\n" +
                                 "POST /echo HTTP/1.1\r\nHost: t\r\n" + auth + "Content-Length: 5\r\n\r\nthree"));
    std::string bytes;
    for (int i = 0; i < 3; ++i) {
        auto r = conn.read_response(10s);
        BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == "data", "response " << i << ": " << r.data);
        bytes += r.data;
    }
    auto responses = aqt::raw::parse_responses(bytes);
    BOOST_TEST_REQUIRE(responses.size() == 3u);
    BOOST_TEST(responses[0].body == "one");
    BOOST_TEST(responses[1].json().at("id") == "two");
    BOOST_TEST(responses[2].body == "three");
}

BOOST_AUTO_TEST_CASE(connection_close_is_honoured_after_the_response) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) == "closed");
    auto res = aqt::raw::parse_response(r.data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.header("connection") == "close");
    BOOST_TEST(res.body == R"({"status":"ok"})");
}

BOOST_AUTO_TEST_CASE(http_1_0_without_keep_alive_is_closed_after_one_response) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET /public HTTP/1.0\r\n\r\n"));
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) == "closed");
    BOOST_TEST(r.data.find(R"({"public":true})") != std::string::npos, r.data);
}
