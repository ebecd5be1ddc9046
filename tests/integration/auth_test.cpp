// Bearer-token authentication: 401 envelopes exactly as the OpenAI API sends them, principals
// handed to plugins.
#define BOOST_TEST_MODULE auth
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

namespace json = boost::json;

BOOST_AUTO_TEST_CASE(missing_token_gets_401_envelope) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.get("/whoami");
    aqt::expect::error_envelope(r, {401, "invalid_request_error"});
    BOOST_TEST(r.json() == json::parse(
        R"({"error":{"message":"You didn't provide an API key. You need to provide your API key in an )"
        R"(Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",)"
        R"("type":"invalid_request_error","param":null,"code":null}})"));
    BOOST_TEST(r.header("www-authenticate") == "Bearer");
}

BOOST_AUTO_TEST_CASE(wrong_token_gets_401_invalid_api_key) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.get("/whoami", {{"Authorization", "Bearer not-a-real-token"}});
    BOOST_TEST(r.json() == json::parse(R"({"error":{"message":"Incorrect API key provided.",)"
                                       R"("type":"invalid_request_error","param":null,"code":"invalid_api_key"}})"));
    aqt::expect::error_envelope(r, {401, "invalid_request_error", "invalid_api_key"});
}

BOOST_AUTO_TEST_CASE(token_of_another_scheme_is_refused) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/whoami", {{"Authorization", "Basic " + gw.token("alice")}}).status == 401);
    BOOST_TEST(c.get("/whoami", {{"Authorization", gw.token("alice")}}).status == 401);
    BOOST_TEST(c.get("/whoami", {{"Authorization", "Bearer " + gw.token("alice") + "x"}}).status == 401);
}

BOOST_AUTO_TEST_CASE(scheme_name_is_case_insensitive) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/whoami", {{"Authorization", "bearer " + gw.token("bob")}}).status == 200);
}

BOOST_AUTO_TEST_CASE(each_token_maps_to_its_principal) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/whoami", {{"Authorization", gw.bearer("bob")}}).json() ==
               json::parse(R"({"token_name":"bob","user":"bob","team":null})"));
    BOOST_TEST(c.get("/whoami", {{"Authorization", gw.bearer("carol")}}).json() ==
               json::parse(R"({"token_name":"carol","user":"carol","team":"research"})"));
}

BOOST_AUTO_TEST_CASE(a_401_leaves_the_connection_usable) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    BOOST_TEST(c.post("/echo", "body nobody reads").status == 401);
    BOOST_TEST(c.post("/echo", "now with a token", {{"Authorization", gw.bearer("alice")}}).body ==
               "now with a token");
    BOOST_TEST(c.connections() == 1);
}
