// A plugin handler that fails never takes the host down: an escaping exception is a logged 500
// envelope, a handler that forgets to answer gets a 500 from the host, and the next request works.
#define BOOST_TEST_MODULE handler_failure
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

BOOST_AUTO_TEST_CASE(throwing_handler_answers_500_and_the_host_keeps_serving) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto r = c.post("/throw", "");
    aqt::expect::error_envelope(r, {500, "server_error", std::nullopt, std::nullopt,
                                    "The server had an error while processing your request."});
    BOOST_TEST(gw.wait_for_log("testplug: deliberate failure"), gw.log());
    auto next = c.get("/whoami");
    BOOST_TEST(next.status == 200);
    BOOST_TEST(c.connections() == 1);
    BOOST_TEST(gw.running());
}

BOOST_AUTO_TEST_CASE(handler_returning_without_an_answer_gets_500) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    aqt::expect::error_envelope(c.get("/silent"), {500, "server_error", std::nullopt, std::nullopt,
                                                   "The handler returned without a response."});
    BOOST_TEST(c.get("/whoami").status == 200);
}

BOOST_AUTO_TEST_CASE(many_failures_in_a_row_do_not_exhaust_the_workers) {
    aqt::gateway gw(aqt::with_testplug({{"workers", 2}}));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    for (int i = 0; i < 20; ++i) BOOST_TEST(c.post("/throw", "").status == 500);
    BOOST_TEST(c.get("/whoami").status == 200);
}
