// Expect: 100-continue (curl for large uploads): the interim response comes only for a request
// that will be handled; a refusal comes as the final status instead, before any body is sent.
#define BOOST_TEST_MODULE expect_continue
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(continue_comes_before_the_body_is_sent) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
    auto interim = conn.read_until("\r\n\r\n", 5s);
    BOOST_TEST_REQUIRE(aqt::raw::to_string(interim.how) == "data");
    BOOST_TEST(interim.data == "HTTP/1.1 100 Continue\r\n\r\n");
    BOOST_TEST_REQUIRE(conn.send("hello world"));
    auto res = aqt::raw::parse_response(conn.read_response(10s).data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("bytes") == 11);
}

BOOST_AUTO_TEST_CASE(body_over_the_limit_gets_413_instead_of_continue) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\n\r\n"));
    auto r = conn.read_response(5s);
    BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == "data", r.data);
    auto res = aqt::raw::parse_response(r.data);
    aqt::expect::error_envelope(res, {413, "invalid_request_error"});
}

BOOST_AUTO_TEST_CASE(unauthenticated_request_gets_401_instead_of_continue) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                 "Expect: 100-continue\r\n\r\n"));
    auto r = conn.read_response(5s);
    BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == "data", r.data);
    auto res = aqt::raw::parse_response(r.data);
    BOOST_TEST(res.status == 401);
}

BOOST_AUTO_TEST_CASE(client_waiting_for_continue_completes_the_upload) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.request("POST", "/echo", {{"Authorization", gw.bearer("alice")}, {"Expect", "100-continue"}},
                       "continued body");
    BOOST_TEST(r.saw_continue);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == "continued body");
}
