// Request bodies with Transfer-Encoding: chunked (the Node SDK's uploads) and large bodies in
// both directions, streamed through testplug.
#define BOOST_TEST_MODULE chunked_body
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <cstring>
#include <random>

using namespace std::chrono_literals;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(gen());
    return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(chunked_upload_arrives_complete_and_in_order) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    std::string body = random_bytes(3 * 1024 * 1024 + 17, 1);
    aqt::http::request req;
    req.method = "POST";
    req.target = "/count";
    req.headers = {{"Authorization", gw.bearer("alice")}};
    req.body = body;
    req.chunked = true;
    req.chunk_size = 1000;  // many small chunks
    auto r = c.send(req);
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    BOOST_TEST(r.json().at("bytes") == body.size());
    BOOST_TEST(r.json().at("sha256").as_string() == aqt::sha256_hex(body));
    BOOST_TEST(r.json().at("chunked") == true);
}

BOOST_AUTO_TEST_CASE(chunked_echo_returns_the_same_bytes_chunked) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    std::string body = random_bytes(200 * 1024, 2);
    aqt::http::request req;
    req.method = "POST";
    req.target = "/v1/echo";
    req.headers = {{"Authorization", gw.bearer("alice")}};
    req.body = body;
    req.chunked = true;
    req.chunk_size = 4096;
    auto r = c.send(req);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("transfer-encoding") == "chunked");
    BOOST_TEST(!r.has_header("content-length"));
    BOOST_TEST(r.body_bytes == body.size());
    BOOST_TEST(r.body_sha256 == aqt::sha256_hex(body));
}

BOOST_AUTO_TEST_CASE(chunk_extensions_and_trailers_are_accepted) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"));
    auto r = conn.read_response(10s);
    auto res = aqt::raw::parse_response(r.data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("bytes") == 11);
    BOOST_TEST(res.json().at("sha256").as_string() == aqt::sha256_hex("hello world"));
}

BOOST_AUTO_TEST_CASE(empty_chunked_body_counts_zero_bytes) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    auto res = aqt::raw::parse_response(conn.read_response(10s).data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("bytes") == 0);
}

BOOST_AUTO_TEST_CASE(large_upload_streams_through_with_content_length) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port(), 120s);
    constexpr std::uint64_t total = 256ull * 1024 * 1024;
    std::uint64_t produced = 0;
    aqt::sha256 expected;
    std::mt19937_64 gen(3);
    aqt::http::request req;
    req.method = "POST";
    req.target = "/count";
    req.headers = {{"Authorization", gw.bearer("alice")}};
    req.content_length = total;
    req.chunk_size = 1 << 20;
    req.body_source = [&](char* buf, std::size_t cap) -> std::size_t {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(cap, total - produced));
        for (std::size_t i = 0; i + 8 <= n; i += 8) {
            std::uint64_t v = gen();
            std::memcpy(buf + i, &v, 8);
        }
        expected.update(std::string_view(buf, n));
        produced += n;
        return n;
    };
    auto r = c.send(req);
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    BOOST_TEST(r.json().at("bytes") == total);
    BOOST_TEST(r.json().at("sha256").as_string() == expected.hex());
    BOOST_TEST(r.json().at("chunked") == false);
}

BOOST_AUTO_TEST_CASE(large_chunked_upload_streams_through) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port(), 120s);
    constexpr std::uint64_t total = 64ull * 1024 * 1024 + 3;
    std::uint64_t produced = 0;
    aqt::sha256 expected;
    aqt::http::request req;
    req.method = "POST";
    req.target = "/count";
    req.headers = {{"Authorization", gw.bearer("alice")}};
    req.chunk_size = 100000;
    req.body_source = [&](char* buf, std::size_t cap) -> std::size_t {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(cap, total - produced));
        for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<char>((produced + i) * 7);
        expected.update(std::string_view(buf, n));
        produced += n;
        return n;
    };
    auto r = c.send(req);
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    BOOST_TEST(r.json().at("bytes") == total);
    BOOST_TEST(r.json().at("sha256").as_string() == expected.hex());
    BOOST_TEST(r.json().at("chunked") == true);
}

BOOST_AUTO_TEST_CASE(large_download_streams_exact_bytes) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port(), 120s);
    constexpr std::size_t total = 128 * 1024 * 1024 + 5;
    aqt::http::request req;
    req.target = "/stream?bytes=" + std::to_string(total);
    req.headers = {{"Authorization", gw.bearer("alice")}};
    req.keep_body = false;
    auto r = c.send(req);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("content-length") == std::to_string(total));
    BOOST_TEST(r.body_bytes == total);
    BOOST_TEST(r.body_sha256 == aqt::sha256_hex(aqt::stream_pattern(total)));
}

// Found by tests/fuzz (fuzz_request_framing): Transfer-Encoding split over two fields, the last
// coding chunked. Beast's parser frames the body as chunked, and the host must follow it: reading
// only the first field, it took the request for one without a body and parsed the chunked body
// as the next request (request smuggling).
BOOST_AUTO_TEST_CASE(transfer_encoding_split_over_two_fields_frames_a_chunked_body) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n0\r\n\r\n"
                                 "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    auto all = conn.read_until_close(10s);
    BOOST_TEST_REQUIRE(std::string(aqt::raw::to_string(all.how)) == "closed");
    auto responses = aqt::raw::parse_responses(all.data);
    BOOST_TEST_REQUIRE(responses.size() == 2u, all.data);
    BOOST_TEST(responses[0].status == 200);
    BOOST_TEST(responses[0].json().at("bytes") == 5);
    BOOST_TEST(responses[0].json().at("sha256").as_string() == aqt::sha256_hex("hello"));
    BOOST_TEST(responses[1].status == 200);
    BOOST_TEST(responses[1].body == R"({"status":"ok"})");
}
