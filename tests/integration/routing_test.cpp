// The router as clients see it: /v1 aliases, path parameters, 404 and 405 envelopes, /healthz.
#define BOOST_TEST_MODULE routing
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

namespace json = boost::json;

BOOST_AUTO_TEST_CASE(unknown_path_gets_the_404_envelope) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.get("/v1/nothing/here", {{"Authorization", gw.bearer("alice")}});
    aqt::expect::error_envelope(r, {404, "invalid_request_error"});
    BOOST_TEST(r.json() == json::parse(R"({"error":{"message":"Invalid URL (GET /v1/nothing/here).",)"
                                       R"("type":"invalid_request_error","param":null,"code":null}})"));
}

BOOST_AUTO_TEST_CASE(wrong_method_gets_405_naming_the_allowed_ones) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.request("DELETE", "/v1/echo", {{"Authorization", gw.bearer("alice")}});
    aqt::expect::error_envelope(r, {405, "invalid_request_error"});
    BOOST_TEST(r.header("allow") == "POST");
}

BOOST_AUTO_TEST_CASE(every_route_answers_with_and_without_v1) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto bare = c.get("/items/abc?x=1&y=2");
    BOOST_TEST(bare.status == 200);
    BOOST_TEST(bare.json() == json::parse(R"({"id":"abc","path":"/items/abc","query":"x=1&y=2","method":"GET"})"));
    auto prefixed = c.get("/v1/items/abc");
    BOOST_TEST(prefixed.status == 200);
    BOOST_TEST(prefixed.json() == json::parse(R"({"id":"abc","path":"/v1/items/abc","query":"","method":"GET"})"));
}

BOOST_AUTO_TEST_CASE(path_parameters_are_percent_decoded) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.get("/items/a%20b%2Fc", {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.json().at("id") == "a b/c");
}

BOOST_AUTO_TEST_CASE(healthz_answers_without_a_token) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    for (const char* path : {"/healthz", "/v1/healthz"}) {
        auto r = c.get(path);
        BOOST_TEST(r.status == 200);
        BOOST_TEST(r.body == R"({"status":"ok"})");
        BOOST_TEST(r.header("content-type") == "application/json");
    }
    auto post = c.request("POST", "/healthz");
    BOOST_TEST(post.status == 405);
    BOOST_TEST(post.header("allow") == "GET");
}

BOOST_AUTO_TEST_CASE(public_route_needs_no_token) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.get("/v1/public");
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"public":true})");
}

BOOST_AUTO_TEST_CASE(every_response_carries_a_request_id) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto a = c.get("/whoami", {{"Authorization", gw.bearer("alice")}});
    auto b = c.get("/whoami", {{"Authorization", gw.bearer("alice")}});
    auto missing = c.get("/nope");
    BOOST_TEST(a.header("x-request-id").rfind("req_", 0) == 0u);
    BOOST_TEST(a.header("x-request-id") != b.header("x-request-id"));
    BOOST_TEST(!missing.header("x-request-id").empty());
}
