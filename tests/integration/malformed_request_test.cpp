// Bad input on the wire gets a clear 4xx in the error envelope, and the host keeps serving.
#define BOOST_TEST_MODULE malformed_request
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

using namespace std::chrono_literals;

namespace {

// Sends `bytes` on a fresh connection; returns the one response and checks the server closed.
aqt::http::response answer_to(const aqt::gateway& gw, const std::string& bytes) {
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send(bytes));
    auto r = conn.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) != "timeout", "the connection stayed open after: " << r.data);
    return aqt::raw::parse_response(r.data);
}

void still_serving(const aqt::gateway& gw) {
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/healthz").status == 200);
}

}  // namespace

BOOST_AUTO_TEST_CASE(garbage_request_line_gets_400) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::expect::error_envelope(answer_to(gw, "HELLO THERE\r\n\r\n"), {400, "invalid_request_error"});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(request_line_without_version_gets_400) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::expect::error_envelope(answer_to(gw, "GET /healthz\r\n\r\n"), {400, "invalid_request_error"});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(unsupported_http_version_gets_505) {
    // The HTTP/2 connection preface: a client speaking HTTP/2 to an HTTP/1.1 server.
    aqt::gateway gw(aqt::with_testplug());
    aqt::expect::error_envelope(answer_to(gw, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                                {505, "server_error", std::nullopt, std::nullopt,
                                 "HTTP version 2.0 is not supported; use HTTP/1.1."});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(target_not_starting_with_a_slash_gets_400) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::expect::error_envelope(
        answer_to(gw, "GET healthz HTTP/1.1\r\nHost: t\r\n\r\n"),
        {400, "invalid_request_error", std::nullopt, std::nullopt,
         "Malformed HTTP request: the request target must start with '/'."});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(header_line_without_colon_gets_400) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::expect::error_envelope(answer_to(gw, "GET /healthz HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n"),
                                {400, "invalid_request_error"});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(conflicting_content_lengths_get_400) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::expect::error_envelope(
        answer_to(gw, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        {400, "invalid_request_error"});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(oversize_headers_get_431) {
    aqt::gateway gw(aqt::with_testplug({{"max_header_bytes", 4096}}));
    aqt::expect::error_envelope(
        answer_to(gw, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n"),
        {431, "invalid_request_error", std::nullopt, std::nullopt, "Request header fields are too large."});
    still_serving(gw);
}

BOOST_AUTO_TEST_CASE(headers_just_under_the_limit_are_served) {
    aqt::gateway gw(aqt::with_testplug({{"max_header_bytes", 4096}}));
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/healthz", {{"X-Big", std::string(3000, 'a')}}).status == 200);
}

BOOST_AUTO_TEST_CASE(unknown_method_on_a_known_path_gets_405_with_allow) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.request("BREW", "/whoami", {{"Authorization", gw.bearer("alice")}});
    aqt::expect::error_envelope(r, {405, "invalid_request_error", std::nullopt, std::nullopt,
                                    "Method BREW is not allowed on /whoami."});
    BOOST_TEST(r.header("allow") == "GET");
}

BOOST_AUTO_TEST_CASE(unknown_method_on_an_unknown_path_gets_404) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    aqt::expect::error_envelope(c.request("BREW", "/coffee"),
                                {404, "invalid_request_error", std::nullopt, std::nullopt, "Invalid URL (BREW /coffee)."});
}
