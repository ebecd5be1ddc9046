// Per-route body limits (testplug: /echo 1 MiB, /limited 1 KiB, GET routes none): a declared
// Content-Length over the limit is answered 413 before the body is read, and the client reads
// that answer instead of a connection reset.
#define BOOST_TEST_MODULE body_limit
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t MiB = 1024 * 1024;

std::string post_head(const aqt::gateway& gw, const std::string& target, std::size_t length) {
    return "POST " + target + " HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
           "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(body_over_limit_is_refused_before_it_is_read) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    // Only the header goes out: the answer must not wait for a body.
    BOOST_TEST_REQUIRE(conn.send(post_head(gw, "/echo", MiB + 1)));
    auto r = conn.read_response(5s);
    BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == "data", r.data);
    aqt::expect::error_envelope(aqt::raw::parse_response(r.data),
                                {413, "invalid_request_error", std::nullopt, std::nullopt,
                                 "Request body of 1048577 bytes exceeds the limit of 1048576 bytes for this endpoint."});
}

BOOST_AUTO_TEST_CASE(client_sending_the_whole_oversize_body_reads_413_not_a_reset) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    std::string body(4 * MiB, 'x');
    // The client sends everything without waiting, like the SDKs do; the server answers early
    // and must let the client read that answer.
    std::thread sender([&] { conn.send(post_head(gw, "/echo", body.size()) + body); });
    auto r = conn.read_response(10s);
    sender.join();
    BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == "data", r.data);
    aqt::expect::error_envelope(aqt::raw::parse_response(r.data), {413, "invalid_request_error"});
    // Whatever happens afterwards (drain or close), the gateway keeps serving.
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(small_refused_body_is_drained_and_the_connection_reused) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send(post_head(gw, "/limited", 2000) + std::string(2000, 'y') +
                                 "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    std::string bytes = conn.read_response(5s).data;
    bytes += conn.read_response(5s).data;
    auto responses = aqt::raw::parse_responses(bytes);
    BOOST_TEST_REQUIRE(responses.size() == 2u, bytes);
    aqt::expect::error_envelope(responses[0], {413, "invalid_request_error"});
    BOOST_TEST(responses[1].status == 200);
    BOOST_TEST(responses[1].body == R"({"status":"ok"})");
}

BOOST_AUTO_TEST_CASE(body_of_exactly_the_limit_is_accepted) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    std::string body(MiB, 'z');
    auto r = c.request("POST", "/echo", {{"Authorization", gw.bearer("alice")}}, body);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == body);
}

BOOST_AUTO_TEST_CASE(chunked_body_over_limit_is_refused_when_it_crosses_the_limit) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    aqt::http::request req;
    req.method = "POST";
    req.target = "/limited";
    req.headers = {{"Authorization", gw.bearer("alice")}};
    req.body = std::string(1025, 'c');
    req.chunked = true;
    req.chunk_size = 100;
    aqt::expect::error_envelope(c.send(req), {413, "invalid_request_error"});

    aqt::http::client fresh(gw.port());
    req.body = std::string(1024, 'c');
    auto ok = fresh.send(req);
    BOOST_TEST(ok.status == 200);
    BOOST_TEST(ok.json().at("bytes") == 1024);
}

BOOST_AUTO_TEST_CASE(route_without_a_body_refuses_one) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    auto r = c.request("GET", "/whoami", {{"Authorization", gw.bearer("alice")}}, "unexpected");
    aqt::expect::error_envelope(r, {413, "invalid_request_error", std::nullopt, std::nullopt,
                                    "This endpoint does not take a request body."});
}

// Found by tests/fuzz (fuzz_request_framing): a Content-Length past INT64_MAX turned negative in
// the host, which then took the request for one without a body and parsed the body as the next
// request. It is refused, and nothing after it is read as a request.
BOOST_AUTO_TEST_CASE(content_length_past_int64_is_refused_and_the_connection_closed) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nContent-Length: 18446744073709551615\r\n\r\n"
                                 "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto all = conn.read_until_close(10s);
    BOOST_TEST_REQUIRE(std::string(aqt::raw::to_string(all.how)) == "closed", all.data);
    auto responses = aqt::raw::parse_responses(all.data);
    BOOST_TEST_REQUIRE(responses.size() == 1u, all.data);
    aqt::expect::error_envelope(responses[0], {413, "invalid_request_error", std::nullopt, std::nullopt,
                                               "Request body of 18446744073709551615 bytes is too large."});
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/healthz").status == 200);
}
