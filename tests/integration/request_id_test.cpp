// Request ids end to end: a sane incoming x-request-id is kept and echoed, anything else is
// replaced by a generated one, and the id is on every log line the request causes: plugin lines
// from the handler thread, lines from the reader of a pulled body, the host's own lines.
#define BOOST_TEST_MODULE request_id
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

#include <cctype>
#include <string>

namespace {

struct fixture {
    aqt::gateway gw{aqt::with_testplug()};
    aqt::http::client c{gw.port()};
    fixture() { c.default_headers["Authorization"] = gw.bearer("alice"); }
};

bool generated(const std::string& id) {
    if (id.size() != 28 || id.rfind("req_", 0) != 0) return false;
    for (char ch : id.substr(4))
        if (!std::isalnum(static_cast<unsigned char>(ch))) return false;
    return true;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(request_id, fixture)

BOOST_AUTO_TEST_CASE(a_sane_incoming_request_id_is_kept_and_echoed) {
    const std::string id = "trace-42.a:b/c+d=_Z9";
    auto r = c.get("/whoami", {{"x-request-id", id}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("x-request-id") == id);
    const std::string longest(128, 'k');
    BOOST_TEST(c.get("/whoami", {{"x-request-id", longest}}).header("x-request-id") == longest);
}

BOOST_AUTO_TEST_CASE(an_insane_incoming_request_id_is_replaced_by_a_generated_one) {
    for (const std::string& bad : {std::string("has space"), std::string("quote\"d"), std::string(129, 'k'),
                                  std::string("semi;colon"), std::string("br{ace}"), std::string("\xc3\xa9t\xc3\xa9")}) {
        auto r = c.get("/whoami", {{"x-request-id", bad}});
        BOOST_TEST(r.status == 200);
        BOOST_TEST(generated(r.header("x-request-id")), bad << " -> " << r.header("x-request-id"));
    }
    BOOST_TEST(generated(c.get("/whoami").header("x-request-id")));
}

BOOST_AUTO_TEST_CASE(host_answers_carry_the_incoming_id_too) {
    auto r = c.get("/no/such/route", {{"x-request-id", "lost-1"}});
    BOOST_TEST(r.status == 404);
    BOOST_TEST(r.header("x-request-id") == "lost-1");
}

BOOST_AUTO_TEST_CASE(plugin_log_lines_from_the_handler_carry_the_id) {
    BOOST_TEST(c.get("/slow?ms=1", {{"x-request-id", "slow-7"}}).status == 200);
    BOOST_TEST(gw.wait_for_log("[testplug] [slow-7] slow request started: 1 ms"), gw.log());
    auto r = c.get("/slow?ms=2");
    const std::string id = r.header("x-request-id");
    BOOST_TEST(gw.wait_for_log("[testplug] [" + id + "] slow request started: 2 ms"), gw.log());
}

BOOST_AUTO_TEST_CASE(lines_of_a_pulled_body_reader_carry_the_id) {
    // The first piece is read on the handler's thread right after it returns; later pieces on
    // whichever worker the connection's progress wakes.
    aqt::http::client first(gw.port()), later(gw.port());
    // Each response is cut short on purpose: the client sees a partial message.
    BOOST_CHECK_THROW(first.request("GET", "/pull?bytes=1000&fail_at=0",
                                    {{"Authorization", gw.bearer("alice")}, {"x-request-id", "pull-first"}}),
                      std::runtime_error);
    BOOST_TEST(gw.wait_for_log("[testplug] [pull-first] response body source failed"), gw.log());
    BOOST_CHECK_THROW(later.request("GET", "/pull?bytes=1000000&fail_at=500000",
                                    {{"Authorization", gw.bearer("alice")}, {"x-request-id", "pull-later"}}),
                      std::runtime_error);
    BOOST_TEST(gw.wait_for_log("[testplug] [pull-later] response body source failed"), gw.log());
    BOOST_TEST(gw.wait_for_log("[http] [pull-later] plugin testplug: body source failed"), gw.log());
}

BOOST_AUTO_TEST_CASE(host_lines_about_a_request_carry_the_id) {
    BOOST_TEST(c.get("/misbehave/status_600", {{"x-request-id", "rude-3"}}).status == 500);
    BOOST_TEST(gw.wait_for_log("[http] [rude-3] plugin testplug: response refused"), gw.log());
}

BOOST_AUTO_TEST_CASE(lines_without_a_request_carry_no_id) {
    BOOST_TEST(gw.log().find("[testplug] testplug ready") != std::string::npos, gw.log());
}

BOOST_AUTO_TEST_SUITE_END()
