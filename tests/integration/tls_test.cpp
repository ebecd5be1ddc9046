// TLS on the listener: a CA and certificates made in the test (test_ca), curl with --cacert and
// the test's own OpenSSL client against the TLS port while the plain port serves too; every
// response form over TLS (complete, streamed, pulled, a file, chunked uploads, 100-continue); a
// large body streaming to a handler that pauses; a plain HTTP request to the TLS port gets a clean
// 400; the certificate reloads on SIGHUP for new connections while established ones go on.
#define BOOST_TEST_MODULE tls
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "support/test_ca.hpp"
#include "testplug.hpp"

#include <openssl/ssl.h>

#include <csignal>
#include <filesystem>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

json::object tls_section(const aqt::test_ca::issued& cert, json::object extra = {}) {
    extra["listen"] = "127.0.0.1:0";
    extra["certificate"] = cert.cert.string();
    extra["private_key"] = cert.key.string();
    return extra;
}

struct fixture {
    aqt::test_ca ca;
    aqt::test_ca::issued cert = ca.issue("server");
    // 2 s for the handshake and the head: short enough for the silent connection's case, long
    // enough for every other case's handshake on a loaded machine under the sanitizers.
    aqt::gateway gw{aqt::with_testplug({{"tls", tls_section(cert)}, {"header_timeout_ms", 2000}})};

    aqt::raw::connection tls_connection(const std::string& name = "localhost") const {
        aqt::raw::connection_options o;
        o.tls_ca_file = ca.ca_file().string();
        o.tls_server_name = name;
        return aqt::raw::connection(gw.tls_port(), o);
    }

    // curl against the TLS port: the body and then the status on the last line.
    aqt::command_result curl(const std::string& target, const std::string& host = "localhost",
                             std::vector<std::string> extra = {}) const {
        std::vector<std::string> args = {"-sS", "--cacert", ca.ca_file().string(), "-w", "\n%{http_code}",
                                         "-H", "Authorization: " + gw.bearer("alice")};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("https://" + host + ":" + std::to_string(gw.tls_port()) + target);
        return aqt::run_program("curl", args);
    }
};

aqt::http::response roundtrip(aqt::raw::connection& c, const std::string& bytes) {
    BOOST_TEST_REQUIRE(c.send(bytes));
    auto r = c.read_response(10s);
    BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == std::string("data"), r.data);
    return aqt::raw::parse_response(r.data);
}

std::string get(const aqt::gateway& gw, const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + gw.bearer("alice") + "\r\n\r\n";
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tls, fixture)

BOOST_AUTO_TEST_CASE(curl_with_the_test_ca_gets_answers_on_the_tls_port_while_plain_serves_too) {
    BOOST_TEST(gw.tls_port() != 0);
    BOOST_TEST(gw.tls_port() != gw.port());
    auto r = curl("/whoami");
    BOOST_TEST_REQUIRE(r.status.success(), r.output);
    BOOST_TEST(r.output == "{\"token_name\":\"alice\",\"user\":\"alice\",\"team\":null}\n200");
    auto by_ip = curl("/v1/whoami", "127.0.0.1");
    BOOST_TEST(by_ip.output == "{\"token_name\":\"alice\",\"user\":\"alice\",\"team\":null}\n200");
    // TLS 1.2 works too (the minimum).
    auto v12 = curl("/public", "localhost", {"--tls-max", "1.2"});
    BOOST_TEST(v12.output == "{\"public\":true}\n200");
    aqt::http::client plain(gw.port());
    BOOST_TEST(plain.get("/whoami", {{"Authorization", gw.bearer("alice")}}).status == 200);
    BOOST_TEST(gw.log().find("TLS certificate: subject /CN=localhost, serial " + cert.serial) != std::string::npos,
               gw.log());
}

BOOST_AUTO_TEST_CASE(every_response_form_works_over_tls) {
    auto c = tls_connection();
    BOOST_TEST(c.tls_version() == "TLSv1.3");
    BOOST_TEST(c.peer_serial() == cert.serial);
    // A file (respond_file: read and encrypted in pieces instead of sendfile), whole and a range.
    auto file = roundtrip(c, get(gw, "/file?bytes=3000001"));
    BOOST_TEST(file.status == 200);
    BOOST_TEST(file.body_bytes == 3000001u);
    BOOST_TEST((file.body == aqt::stream_pattern(3000001)));
    auto range = roundtrip(c, get(gw, "/file?bytes=100000&offset=70000&length=123"));
    BOOST_TEST((range.body == aqt::stream_pattern(70123).substr(70000)));
    // Pulled, pulled without a length (chunked), streamed (ABI 1.0).
    BOOST_TEST((roundtrip(c, get(gw, "/pull?bytes=500000")).body == aqt::stream_pattern(500000)));
    BOOST_TEST((roundtrip(c, get(gw, "/pull?bytes=70000&unknown=1")).body == aqt::stream_pattern(70000)));
    BOOST_TEST((roundtrip(c, get(gw, "/stream?bytes=200000")).body == aqt::stream_pattern(200000)));
    // An upload, chunked, and one that waits for 100 Continue.
    const std::string body(300000, 'u');
    auto echo = roundtrip(c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + gw.bearer("alice") +
                                "\r\nContent-Length: 300000\r\n\r\n" + body);
    BOOST_TEST((echo.body == body));
    auto count = roundtrip(c, "POST /count HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    BOOST_TEST(count.json().at("bytes") == 5);
    BOOST_TEST(count.json().at("chunked") == true);
    BOOST_TEST_REQUIRE(c.send("POST /count HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + gw.bearer("alice") +
                              "\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    auto interim = c.read_until("\r\n\r\n", 10s);
    BOOST_TEST(interim.data == "HTTP/1.1 100 Continue\r\n\r\n");
    BOOST_TEST_REQUIRE(c.send("abc"));
    auto after = aqt::raw::parse_response(c.read_response(10s).data);
    BOOST_TEST(after.json().at("bytes") == 3);
    // Pipelined requests come out in order.
    BOOST_TEST_REQUIRE(c.send(get(gw, "/items/1") + get(gw, "/items/2") + get(gw, "/items/3")));
    for (const char* id : {"1", "2", "3"})
        BOOST_TEST(aqt::raw::parse_response(c.read_response(10s).data).json().at("id") == id);
}

// A large body over TLS streams to its handler and, while the handler pauses, waits in the
// window and the socket: the connection stops reading (bytes OpenSSL already decrypted stay
// there) and resumes when the handler reads on. Every byte arrives, in order.
BOOST_AUTO_TEST_CASE(a_large_body_streams_over_tls_and_holds_while_its_handler_pauses) {
    const std::size_t size = 24 * 1024 * 1024;
    std::string body = aqt::stream_pattern(size);
    auto c = tls_connection();
    bool sent = false;
    std::thread sender([&] {
        sent = c.send("POST /count?pause_after=" + std::to_string(2 * 1024 * 1024) +
                      "&pause_ms=1500 HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + gw.bearer("alice") +
                      "\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + body);
    });
    BOOST_TEST(gw.wait_for_log("count paused after " + std::to_string(2 * 1024 * 1024) + " bytes"));
    sender.join();
    BOOST_TEST_REQUIRE(sent);
    auto res = aqt::raw::parse_response(c.read_response(60s).data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("bytes").to_number<std::uint64_t>() == size);
    BOOST_TEST(res.json().at("sha256").as_string() == aqt::sha256_hex(body));
    // The connection goes on.
    BOOST_TEST(roundtrip(c, get(gw, "/public")).status == 200);
}

BOOST_AUTO_TEST_CASE(plain_http_to_the_tls_port_gets_a_clean_400_and_a_close) {
    aqt::raw::connection c(gw.tls_port());
    BOOST_TEST_REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_until_close(5s);
    BOOST_TEST(aqt::raw::to_string(r.how) != std::string("timeout"));
    auto res = aqt::raw::parse_response(r.data);
    aqt::expect::error_envelope(res, {400, "invalid_request_error", "plain_http_to_tls_port", std::nullopt,
                                      "This port speaks HTTPS: the plain HTTP request was sent to the TLS port."});
    BOOST_TEST(res.header("connection") == "close");
}

BOOST_AUTO_TEST_CASE(other_bytes_or_silence_on_the_tls_port_end_in_a_close_not_a_hang) {
    {
        aqt::raw::connection c(gw.tls_port());
        BOOST_TEST_REQUIRE(c.send(std::string("DELETE /x HTTP/1.1\r\n\r\n") + std::string(600, '\x17')));
        auto r = c.read_until_close(15s);
        BOOST_TEST(aqt::raw::to_string(r.how) != std::string("timeout"));
    }
    {
        aqt::raw::connection silent(gw.tls_port());
        auto r = silent.read_until_close(15s);  // header_timeout_ms is 2000
        BOOST_TEST(aqt::raw::to_string(r.how) != std::string("timeout"));
        BOOST_TEST(r.data.empty());
    }
    // The server is fine afterwards.
    auto c = tls_connection();
    BOOST_TEST(roundtrip(c, get(gw, "/public")).status == 200);
}

BOOST_AUTO_TEST_CASE(a_client_that_does_not_trust_the_ca_or_asks_for_another_name_fails) {
    aqt::test_ca stranger;
    aqt::raw::connection_options o;
    o.tls_ca_file = stranger.ca_file().string();
    BOOST_CHECK_THROW(aqt::raw::connection(gw.tls_port(), o), std::runtime_error);
    o.tls_ca_file = ca.ca_file().string();
    o.tls_server_name = "elsewhere.example";
    BOOST_CHECK_THROW(aqt::raw::connection(gw.tls_port(), o), std::runtime_error);
    BOOST_TEST(curl("/public", "localhost").output == "{\"public\":true}\n200");
}

BOOST_AUTO_TEST_CASE(the_certificate_reloads_on_sighup_for_new_connections_only) {
    auto established = tls_connection();
    BOOST_TEST(roundtrip(established, get(gw, "/public")).status == 200);
    BOOST_TEST(established.peer_serial() == cert.serial);

    // Renewal: new files under the same names.
    const auto renewed = ca.issue("server");
    BOOST_TEST_REQUIRE(renewed.serial != cert.serial);
    gw.signal(SIGHUP);
    BOOST_TEST_REQUIRE(gw.wait_for_log("TLS certificate for new connections: subject /CN=localhost, serial " + renewed.serial));

    // The established connection goes on, with its certificate; a new one sees the new one.
    BOOST_TEST(roundtrip(established, get(gw, "/whoami")).status == 200);
    BOOST_TEST(established.peer_serial() == cert.serial);
    auto fresh = tls_connection();
    BOOST_TEST(fresh.peer_serial() == renewed.serial);
    BOOST_TEST(roundtrip(fresh, get(gw, "/public")).status == 200);

    // A broken certificate file is refused; the running one stays.
    fs::resize_file(renewed.cert, 100);
    gw.signal(SIGHUP);
    BOOST_TEST_REQUIRE(gw.wait_for_log("reload refused: the running config stays in force"));
    BOOST_TEST(gw.log().find("tls.certificate " + renewed.cert.string() + ": cannot load") != std::string::npos, gw.log());
    auto after_refusal = tls_connection();
    BOOST_TEST(after_refusal.peer_serial() == renewed.serial);
    BOOST_TEST(roundtrip(after_refusal, get(gw, "/public")).status == 200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(tls_1_3_only_refuses_a_tls_1_2_client) {
    aqt::test_ca ca;
    const auto cert = ca.issue("server");
    aqt::gateway gw(aqt::with_testplug({{"tls", tls_section(cert, {{"min_version", "1.3"}})}}));
    aqt::raw::connection_options o;
    o.tls_ca_file = ca.ca_file().string();
    o.tls_max_version = TLS1_2_VERSION;
    BOOST_CHECK_THROW(aqt::raw::connection(gw.tls_port(), o), std::runtime_error);
    o.tls_max_version = 0;
    aqt::raw::connection c(gw.tls_port(), o);
    BOOST_TEST(c.tls_version() == "TLSv1.3");
}

BOOST_AUTO_TEST_CASE(a_key_that_does_not_match_the_certificate_stops_the_start) {
    aqt::test_ca ca;
    const auto one = ca.issue("one"), two = ca.issue("two");
    json::object section{{"listen", "127.0.0.1:0"}, {"certificate", one.cert.string()}, {"private_key", two.key.string()}};
    auto failure = aqt::expect_startup_failure(aqt::with_testplug({{"tls", section}}));
    BOOST_TEST(failure.status.code != 0);
    // OpenSSL finds the mismatch as it loads the key.
    BOOST_TEST(failure.log.find("tls.private_key " + two.key.string() + ": cannot load: ") != std::string::npos,
               failure.log);
    BOOST_TEST(failure.log.find("key values mismatch") != std::string::npos, failure.log);
    section["certificate"] = (ca.dir() / "missing.pem").string();
    failure = aqt::expect_startup_failure(aqt::with_testplug({{"tls", section}}));
    BOOST_TEST(failure.log.find("tls.certificate " + (ca.dir() / "missing.pem").string() + ": cannot load") !=
                   std::string::npos,
               failure.log);
}
