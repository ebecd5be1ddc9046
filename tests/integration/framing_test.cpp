// Strict HTTP/1.1 framing (RFC 9112) over raw sockets, with a request-smuggling corpus after
// PortSwigger's research (CL.TE, TE.CL, TE.TE obfuscations) plus chunk and line-ending cases.
//
// Every case gets exactly one response. Where the RFC says the framing cannot be trusted, the
// answer is 400 (501 for a transfer coding the host does not implement) and the connection is
// closed, so that no byte after it is ever read as a request; the smuggled bytes never reach a
// handler (POST /count's handler counts its starts). Well-formed variants are served and keep
// the connection.
#define BOOST_TEST_MODULE framing
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <optional>

using namespace std::chrono_literals;

namespace {

aqt::gateway& shared_gateway() {
    static aqt::gateway gw(aqt::with_testplug());
    return gw;
}

std::uint64_t handler_starts() { return aqt::count_handler_starts(shared_gateway()); }

std::string auth() { return "Authorization: " + shared_gateway().bearer("alice") + "\r\n"; }

// A POST /count with these header lines (each ending in CRLF) and raw body bytes.
std::string post(const std::string& fields, const std::string& body, const std::string& version = "HTTP/1.1") {
    return "POST /count " + version + "\r\nHost: t\r\n" + auth() + fields + "\r\n" + body;
}

// The smuggled request some cases try to sneak in after their body: if the host read it as a
// request it would answer a second time (GET /whoami, 200).
const std::string smuggled = "GET /whoami HTTP/1.1\r\nHost: t\r\n" + std::string() + "X: ";

struct outcome {
    std::vector<aqt::http::response> responses;
    bool closed = false;
    std::string raw;
};

// Sends the bytes, waits for the first response (however slow a loaded machine is), then reads
// on until the server closes or stays silent for a moment: a second response there would be a
// smuggled request's.
outcome send_raw(const std::string& bytes) {
    aqt::raw::connection conn(shared_gateway().port());
    BOOST_TEST_REQUIRE(conn.send(bytes));
    outcome o;
    auto first = conn.read_response(20s);
    BOOST_TEST_REQUIRE(aqt::raw::to_string(first.how) != std::string("timeout"), "no response in 20 s: " << first.data);
    o.raw = first.data;
    o.closed = first.how == aqt::raw::ending::closed || first.how == aqt::raw::ending::reset;
    if (!o.closed) {
        auto r = conn.read_for(1500ms);
        o.raw += r.data;
        o.closed = r.how == aqt::raw::ending::closed || r.how == aqt::raw::ending::reset;
    }
    if (!o.closed) {
        // Still open: does it really stay open? Poll once more, a little longer.
        auto more = conn.read_for(300ms);
        o.raw += more.data;
        o.closed = more.how == aqt::raw::ending::closed || more.how == aqt::raw::ending::reset;
    }
    o.responses = aqt::raw::parse_responses(o.raw);
    return o;
}

// One refused case: exactly one response with `status`, an error envelope, and a closed
// connection; no handler ran.
void refused(const std::string& name, const std::string& bytes, int status = 400) {
    BOOST_TEST_CONTEXT("case " << name) {
        const auto before = handler_starts();
        auto o = send_raw(bytes);
        BOOST_TEST_REQUIRE(o.responses.size() == 1u, o.raw);
        aqt::expect::error_envelope(o.responses[0], {status, status >= 500 ? "server_error" : "invalid_request_error"});
        BOOST_TEST(o.responses[0].header("connection") == "close");
        BOOST_TEST(o.closed, "the connection stayed open after: " << o.raw);
        BOOST_TEST(handler_starts() == before);
    }
}

// One accepted case: exactly one 200 from POST /count with this many body bytes, and the
// connection stays open.
void accepted(const std::string& name, const std::string& bytes, std::uint64_t body_bytes) {
    BOOST_TEST_CONTEXT("case " << name) {
        auto o = send_raw(bytes);
        BOOST_TEST_REQUIRE(o.responses.size() == 1u, o.raw);
        BOOST_TEST(o.responses[0].status == 200);
        BOOST_TEST(o.responses[0].json().at("bytes") == body_bytes, o.raw);
        BOOST_TEST(!o.closed);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(cl_te_requests_are_refused_and_closed) {
    // Front end uses Content-Length, back end Transfer-Encoding (and the other way round): a
    // message carrying both is refused, whatever the order.
    refused("CL.TE", post("Content-Length: 13\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + smuggled));
    refused("TE.CL", post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "8\r\nSMUGGLED\r\n0\r\n\r\n"));
    refused("CL.TE, TE with a tab", post("Content-Length: 4\r\nTransfer-Encoding:\tchunked\r\n", "5c\r\n" + smuggled));
    refused("CL.TE, CL of zero", post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"));
}

BOOST_AUTO_TEST_CASE(te_te_obfuscations_are_refused_and_closed) {
    const std::string body = "5\r\nhello\r\n0\r\n\r\n" + smuggled;
    refused("TE xchunked", post("Transfer-Encoding: xchunked\r\n", body));
    refused("TE with a space before the colon", post("Transfer-Encoding : chunked\r\n", body));
    refused("TE chunked then x", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", body));
    refused("TE x then chunked", post("Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n", body), 501);
    refused("TE as a folded line", post("X: y\r\n Transfer-Encoding: chunked\r\n", body));
    refused("TE after a bare LF", post("X: X\nTransfer-Encoding: chunked\r\n", body));
    refused("TE name ended by a bare LF", post("Transfer-Encoding\n: chunked\r\n", body));
    refused("TE chunked, identity", post("Transfer-Encoding: chunked, identity\r\n", body));
    refused("TE identity", post("Transfer-Encoding: identity\r\n", body));
    refused("TE gzip", post("Transfer-Encoding: gzip\r\n", body));
    refused("TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", body), 501);
    refused("TE chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n", body));
    refused("TE quoted", post("Transfer-Encoding: \"chunked\"\r\n", body));
    refused("TE empty", post("Transfer-Encoding: \r\n", body));
    refused("TE in HTTP/1.0", post("Transfer-Encoding: chunked\r\n", body, "HTTP/1.0"));
}

BOOST_AUTO_TEST_CASE(content_length_ambiguities_are_refused_and_closed) {
    const std::string body = "hello" + smuggled;
    refused("two different CL", post("Content-Length: 6\r\nContent-Length: 5\r\n", body));
    refused("CL list of different values", post("Content-Length: 5, 6\r\n", body));
    refused("CL with a sign", post("Content-Length: +5\r\n", body));
    refused("CL negative", post("Content-Length: -1\r\n", body));
    refused("CL in hex", post("Content-Length: 0x5\r\n", body));
    refused("CL with an inner space", post("Content-Length: 5 5\r\n", body));
    refused("CL overflowing 64 bits", post("Content-Length: 99999999999999999999\r\n", body));
    refused("CL empty", post("Content-Length: \r\n", body));
}

BOOST_AUTO_TEST_CASE(bad_chunk_framing_is_refused_and_closed) {
    auto chunked = [](const std::string& body) { return post("Transfer-Encoding: chunked\r\n", body); };
    refused("chunk size 0x5", chunked("0x5\r\nhello\r\n0\r\n\r\n"));
    refused("chunk size with a leading space", chunked(" 5\r\nhello\r\n0\r\n\r\n"));
    refused("chunk size negative", chunked("-5\r\nhello\r\n0\r\n\r\n"));
    refused("chunk size overflowing 64 bits", chunked("fffffffffffffffff\r\nhello\r\n0\r\n\r\n"));
    refused("chunk size not hex", chunked("5g\r\nhello\r\n0\r\n\r\n"));
    refused("chunk extension without a name", chunked("5;\r\nhello\r\n0\r\n\r\n"));
    refused("chunk extension with an open quote", chunked("5;a=\"open\r\nhello\r\n0\r\n\r\n"));
    refused("chunk line ended by a bare LF", chunked("5\nhello\r\n0\r\n\r\n"));
    refused("chunk extension with a bare LF", chunked("5;a=b\nhello\r\n0\r\n\r\n"));
    refused("chunk data longer than its size", chunked("3\r\nhello\r\n0\r\n\r\n" + smuggled));
    refused("chunk data without its CRLF", chunked("5\r\nhelloX0\r\n\r\n"));
    refused("chunk data ended by a bare LF", chunked("5\r\nhello\n0\r\n\r\n"));
    refused("last chunk with bare LFs", chunked("5\r\nhello\r\n0\n\n" + smuggled + "\r\n\r\n"));
    refused("chunk line with a bare CR", chunked("5\rhello\r\n0\r\n\r\n"));
}

BOOST_AUTO_TEST_CASE(bad_heads_are_refused_and_closed) {
    refused("request line ended by a bare LF", "GET /healthz HTTP/1.1\nHost: t\n\n");
    refused("header line ended by a bare LF", "GET /healthz HTTP/1.1\r\nHost: t\n\r\n");
    refused("bare CR in the head", "GET /healthz HTTP/1.1\rHost: t\r\n\r\n");
    refused("bare CR in a value", "GET /healthz HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n");
    refused("obs-fold", "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n");
    refused("whitespace before the first field", "GET /healthz HTTP/1.1\r\n Host: t\r\n\r\n");
    refused("NUL in a value", std::string("GET /healthz HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n", 42));
    refused("DEL in a value", "GET /healthz HTTP/1.1\r\nHost: t\r\nX: a\x7f" "b\r\n\r\n");
    refused("no Host in HTTP/1.1", "GET /healthz HTTP/1.1\r\nX: y\r\n\r\n");
    refused("two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    refused("HTTP/2.0 request line", "GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n", 505);
}

BOOST_AUTO_TEST_CASE(well_formed_variants_are_served_and_keep_the_connection) {
    accepted("TE with a tab", post("Transfer-Encoding:\tchunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), 5);
    accepted("TE in capitals", post("Transfer-Encoding: CHUNKED\r\n", "5\r\nhello\r\n0\r\n\r\n"), 5);
    accepted("TE with empty list elements", post("Transfer-Encoding: , chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), 5);
    accepted("CL list of equal values", post("Content-Length: 5, 5\r\n", "hello"), 5);
    accepted("CL repeated with equal values", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), 5);
    accepted("chunk extensions and a trailer",
             post("Transfer-Encoding: chunked\r\n", "5 ; a=b ;c=\"d e\"\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), 5);
    accepted("chunk size with leading zeros", post("Transfer-Encoding: chunked\r\n", "0005\r\nhello\r\n000\r\n\r\n"), 5);
    accepted("HTTP/1.0 without Host", "POST /count HTTP/1.0\r\n" + auth() + "Connection: keep-alive\r\n"
                                      "Content-Length: 5\r\n\r\nhello", 5);
}

BOOST_AUTO_TEST_CASE(a_refused_request_does_not_disturb_the_next_connection) {
    refused("CL.TE", post("Content-Length: 13\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + smuggled));
    aqt::http::client c(shared_gateway().port());
    auto r = c.post("/count", "fresh", {{"Authorization", shared_gateway().bearer("alice")}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.json().at("bytes") == 5);
}
