// What a plugin answers is checked before it reaches the network, and the ABI 1.1 responses
// (pulled body, file) arrive byte for byte and hold no worker while the client is slow.
//
// A refused response is a 500 envelope, one log line naming the rule, and the connection keeps
// serving; a streamed response that breaks its own framing after the headers went out ends in
// a closed connection with a short body, never extra bytes. Every response carries a Date.
#define BOOST_TEST_MODULE plugin_response
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "support/wait_until.hpp"
#include "testplug.hpp"

#include <ctime>
#include <future>
#include <regex>
#include <thread>

using namespace std::chrono_literals;

namespace {

aqt::gateway& shared_gateway() {
    static aqt::gateway gw(aqt::with_testplug());
    return gw;
}

// A keep-alive client with alice's token.
struct alice_client : aqt::http::client {
    explicit alice_client(const aqt::gateway& gw, std::chrono::milliseconds timeout = 30s) : client(gw.port(), timeout) {
        default_headers["Authorization"] = gw.bearer("alice");
    }
};

// A raw connection that sent GET `target` with alice's token.
std::unique_ptr<aqt::raw::connection> raw_get(const aqt::gateway& gw, const std::string& target,
                                              aqt::raw::connection_options options = {}) {
    auto conn = std::make_unique<aqt::raw::connection>(gw.port(), options);
    BOOST_TEST_REQUIRE(conn->send("GET " + target + " HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                  "\r\n\r\n"));
    return conn;
}

// A Date header in IMF-fixdate form within a few seconds of now.
void expect_date(const aqt::http::response& r) {
    const std::string date = r.header("date");
    static const std::regex imf(R"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT)");
    BOOST_TEST(std::regex_match(date, imf), "Date: " << date);
    std::tm tm{};
    BOOST_TEST_REQUIRE(strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
    const long skew = static_cast<long>(timegm(&tm) - std::time(nullptr));
    BOOST_TEST(std::labs(skew) <= 5, "Date is " << skew << " s off");
}

}  // namespace

BOOST_AUTO_TEST_CASE(responses_breaking_the_rules_become_a_logged_500) {
    auto& gw = shared_gateway();
    const std::string long_name = "header name " + std::string(40, 'X') + "... longer than 256 bytes";
    const std::pair<const char*, std::string> cases[] = {
        {"status_99", "status 99 is outside 200..599"},
        {"status_100", "status 100 is outside 200..599"},
        {"status_600", "status 600 is outside 200..599"},
        {"body_204", "status 204 may not carry a body"},
        {"body_304", "status 304 may not carry a body"},
        {"begin_204_with_length", "status 204 may not carry a body"},
        {"source_304", "status 304 may not carry a body"},
        {"name_space", "header name Bad Name is not a token"},
        {"name_colon", "header name X-A:b is not a token"},
        {"name_empty", "an empty header name"},
        {"name_long", long_name},
        {"value_crlf", "header X-Split has a control character in its value: a\\x0d\\x0aX-Injected: 1"},
        {"value_lf", "header X-Split has a control character in its value: a\\x0ab"},
        {"value_cr", "header X-Split has a control character in its value: a\\x0db"},
        {"value_nul", "header X-Nul has a control character in its value: a\\x00b"},
        {"value_64k", "header X-Big has a value of 65536 bytes (at most 8192)"},
        {"too_many", "101 header fields (at most 100)"},
        {"too_big_in_all", "header fields of 72099 bytes (at most 65536)"},
        {"content_length", "header Content-Length is set by the host"},
        {"transfer_encoding", "header Transfer-Encoding is set by the host"},
        {"connection", "header Connection is set by the host"},
        {"date", "header Date is set by the host"},
    };
    alice_client c(gw);
    for (auto& [name, rule] : cases) {
        BOOST_TEST_CONTEXT("case " << name) {
            auto r = c.get(std::string("/misbehave/") + name);
            aqt::expect::error_envelope(r, {500, "server_error", std::nullopt, std::nullopt,
                                            "The server had an error while processing your request."});
            BOOST_TEST(!r.has_header("x-injected"));
            expect_date(r);
            BOOST_TEST(gw.wait_for_log("response refused: " + rule, 5s), gw.log());
        }
    }
    // One connection for all of them: no refusal cost the connection, nor the host.
    BOOST_TEST(c.connections() == 1);
    BOOST_TEST(c.get("/whoami").status == 200);
}

BOOST_AUTO_TEST_CASE(well_formed_unusual_responses_pass_unchanged) {
    auto& gw = shared_gateway();
    auto conn = raw_get(gw, "/misbehave/ok_empty_204");
    auto head = conn->read_until("\r\n\r\n", 5s);
    auto r = aqt::raw::parse_response(head.data);
    BOOST_TEST(r.status == 204);
    BOOST_TEST(!r.has_header("content-length"));
    BOOST_TEST(!r.has_header("transfer-encoding"));
    expect_date(r);
    BOOST_TEST(conn->read_for(300ms).data.empty());  // no body bytes after a 204

    alice_client c(gw);
    auto fine = c.get("/misbehave/ok_tab_and_obs_text");
    BOOST_TEST(fine.status == 200);
    BOOST_TEST(fine.header("x-fine") == "a\tb \xc3\xa9");
}

BOOST_AUTO_TEST_CASE(streamed_response_breaking_its_length_is_cut_short) {
    auto& gw = shared_gateway();
    const std::pair<const char*, std::size_t> cases[] = {{"write_past_length", 5}, {"end_short", 10}};
    for (auto& [name, declared] : cases) {
        BOOST_TEST_CONTEXT("case " << name) {
            auto r = raw_get(gw, std::string("/misbehave/") + name)->read_until_close(5s);
            BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
            auto end = r.data.find("\r\n\r\n");
            BOOST_TEST_REQUIRE(end != std::string::npos, r.data);
            BOOST_TEST(r.data.find("Content-Length: " + std::to_string(declared)) != std::string::npos, r.data);
            BOOST_TEST(r.data.size() - end - 4 < declared, r.data);  // the client can tell it is short
        }
    }
    BOOST_TEST(gw.wait_for_log("response refused: write_response past the declared Content-Length of 5 bytes"));
    BOOST_TEST(gw.wait_for_log("response refused: end_response after 5 of the declared 10 bytes"));
}

BOOST_AUTO_TEST_CASE(every_kind_of_response_carries_date) {
    auto& gw = shared_gateway();
    alice_client c(gw);
    for (const char* target : {"/healthz", "/whoami", "/no/such/route", "/stream?bytes=100", "/pull?bytes=100",
                               "/file?bytes=100", "/silent", "/misbehave/status_99"}) {
        BOOST_TEST_CONTEXT(target) { expect_date(c.get(target)); }
    }
    aqt::http::client anonymous(gw.port());
    expect_date(anonymous.get("/whoami"));  // 401
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET / HTTP/1.1\r\n\r\n"));  // 400 from the framing rules
    expect_date(aqt::raw::parse_response(conn.read_until_close(5s).data));
}

BOOST_AUTO_TEST_CASE(pulled_response_arrives_exactly_with_length_or_chunked) {
    auto& gw = shared_gateway();
    alice_client c(gw);
    constexpr std::size_t n = 3 * 1024 * 1024 + 7;
    auto sized = c.get("/pull?bytes=" + std::to_string(n));
    BOOST_TEST(sized.status == 200);
    BOOST_TEST(sized.header("content-length") == std::to_string(n));
    BOOST_TEST(sized.body_sha256 == aqt::sha256_hex(aqt::stream_pattern(n)));
    auto chunked = c.get("/pull?unknown=1&bytes=" + std::to_string(n));
    BOOST_TEST(chunked.status == 200);
    BOOST_TEST(chunked.header("transfer-encoding") == "chunked");
    BOOST_TEST(chunked.body_sha256 == aqt::sha256_hex(aqt::stream_pattern(n)));
    auto empty = c.get("/pull?bytes=0");
    BOOST_TEST(empty.status == 200);
    BOOST_TEST(empty.header("content-length") == "0");
    BOOST_TEST(c.connections() == 1);
}

BOOST_AUTO_TEST_CASE(pulled_response_of_unknown_length_to_http_1_0_ends_with_the_connection) {
    auto& gw = shared_gateway();
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("GET /pull?unknown=1&bytes=100000 HTTP/1.0\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nConnection: keep-alive\r\n\r\n"));
    auto r = conn.read_until_close(10s);
    BOOST_TEST(aqt::raw::to_string(r.how) == "closed");
    auto end = r.data.find("\r\n\r\n");
    BOOST_TEST_REQUIRE(end != std::string::npos);
    const std::string head = r.data.substr(0, end);
    BOOST_TEST(head.find("Transfer-Encoding") == std::string::npos, head);
    BOOST_TEST(head.find("Connection: close") != std::string::npos, head);
    BOOST_TEST((r.data.substr(end + 4) == aqt::stream_pattern(100000)));
}

BOOST_AUTO_TEST_CASE(failing_or_short_sources_abort_and_every_source_is_released_once) {
    auto& gw = shared_gateway();
    alice_client c(gw);
    // The earlier cases' sources are released after their responses end, on the server's time:
    // the count starts once none is open, or a late release would be counted as one of these.
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return c.get("/sources").json().at("open").as_int64() == 0; }, 10s));
    const std::int64_t released_before = c.get("/sources").json().at("released").as_int64();
    for (const char* target : {"/pull?bytes=2000000&fail_at=300000", "/pull?bytes=2000000&short=10"}) {
        BOOST_TEST_CONTEXT(target) {
            auto r = raw_get(gw, target)->read_until_close(10s);
            BOOST_TEST(aqt::raw::to_string(r.how) != "timeout");
            auto end = r.data.find("\r\n\r\n");
            BOOST_TEST_REQUIRE(end != std::string::npos);
            BOOST_TEST(r.data.size() - end - 4 < 2000000u);
        }
    }
    BOOST_TEST(gw.wait_for_log("response body source failed: testplug: deliberate source failure"));
    BOOST_TEST(gw.wait_for_log("body source ended after 1999990 of the declared 2000000 bytes; response aborted"));
    // A client that goes away in the middle of a pulled body.
    BOOST_TEST(aqt::raw::to_string(raw_get(gw, "/pull?bytes=100000000", {4096, ""})->read_until("abcdef", 5s).how) ==
               "data");
    // Three sources more, none left open.
    std::int64_t released = 0, open = -1;
    aqt::wait_until(
        [&] {
            auto now = c.get("/sources").json();
            released = now.at("released").as_int64();
            open = now.at("open").as_int64();
            return released == released_before + 3 && open == 0;
        },
        10s);
    BOOST_TEST(released == released_before + 3);
    BOOST_TEST(open == 0);
}

BOOST_AUTO_TEST_CASE(file_response_sends_the_range_it_was_given) {
    auto& gw = shared_gateway();
    alice_client c(gw);
    constexpr std::size_t size = 5 * 1024 * 1024 + 11, offset = 100, length = 3 * 1024 * 1024;
    auto r = c.get("/file?bytes=" + std::to_string(size) + "&offset=" + std::to_string(offset) + "&length=" +
                   std::to_string(length));
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("content-length") == std::to_string(length));
    BOOST_TEST(r.body_sha256 == aqt::sha256_hex(aqt::stream_pattern(offset + length).substr(offset)));
    auto whole = c.get("/file?bytes=" + std::to_string(size));
    BOOST_TEST(whole.body_sha256 == aqt::sha256_hex(aqt::stream_pattern(size)));
    BOOST_TEST(c.connections() == 1);

    auto bad = c.get("/file_not_regular");
    aqt::expect::error_envelope(bad, {500, "server_error"});
    BOOST_TEST(gw.wait_for_log("response refused: respond_file with a descriptor that is not a regular file"));
    auto past_end = c.get("/file?bytes=10&offset=5&length=6");
    aqt::expect::error_envelope(past_end, {500, "server_error"});
}

BOOST_AUTO_TEST_CASE(stalled_readers_of_pulled_and_file_responses_hold_no_worker) {
    // One worker only: if a stalled download held it, the last request would never be served.
    aqt::gateway gw(aqt::with_testplug({{"workers", 1}}));
    std::vector<std::unique_ptr<aqt::raw::connection>> stalled;
    for (const char* target : {"/pull?bytes=200000000", "/file?bytes=60000000", "/pull?unknown=1&bytes=200000000"}) {
        auto conn = raw_get(gw, target, {4096, ""});
        BOOST_TEST_REQUIRE(aqt::raw::to_string(conn->read_until("abcdef", 5s).how) == "data");
        stalled.push_back(std::move(conn));  // and never read again
    }
    std::this_thread::sleep_for(300ms);  // the server has filled the socket buffers by now
    alice_client c(gw, 5s);
    auto r = c.get("/whoami");
    BOOST_TEST(r.status == 200);
}
