// The request decoder on its own: the same bytes decode the same way however the network splits
// them, leftovers belong to the next request, and refusals come on the byte that decides them.
#define BOOST_TEST_MODULE request_decoder
#include <boost/test/unit_test.hpp>

#include "request_decoder.hpp"

#include <string>
#include <vector>

using aqd::request_decoder;
using state = aqd::request_decoder::state;

namespace {

struct decoded {
    state final = state::head;
    std::string body;
    std::string rest;  // bytes not consumed (the next request)
    int status = 0;    // when failed
    std::string message;
    aqd::request_line_and_fields head;
};

// Feeds `bytes` in pieces of `step` bytes (0: all at once), as a connection would: whatever a
// feed leaves unconsumed is offered again, together with the next piece, until the request ends.
decoded run(const std::string& bytes, std::size_t step = 0, std::size_t max_header = 16384) {
    request_decoder d(max_header);
    decoded out;
    std::string pending;
    std::size_t pos = 0;
    while (true) {
        if (pos < bytes.size()) {
            std::size_t n = step ? std::min(step, bytes.size() - pos) : bytes.size() - pos;
            pending.append(bytes, pos, n);
            pos += n;
        }
        std::size_t used = 0;
        while (used < pending.size()) {
            const auto before = d.current();
            std::size_t n = d.feed(std::string_view(pending).substr(used), out.body);
            used += n;
            if (d.current() == state::complete || d.current() == state::failed) break;
            if (n == 0 && d.current() == before) break;
        }
        pending.erase(0, used);
        if (d.current() == state::complete || d.current() == state::failed || pos == bytes.size()) break;
    }
    out.final = d.current();
    out.rest = pending + bytes.substr(pos);  // what the decoder left, and what it never saw
    if (d.current() == state::failed) {
        out.status = d.error().status;
        out.message = d.error().message;
    }
    if (d.current() != state::failed && d.current() != state::head) out.head = d.head();
    return out;
}

const std::string next = "GET /next HTTP/1.1\r\nHost: t\r\n\r\n";

}  // namespace

BOOST_AUTO_TEST_CASE(every_split_decodes_a_chunked_request_the_same_way) {
    const std::string req = "POST /up?x=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5;ext=\"a b\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n" +
                            next;
    for (std::size_t step : {0, 1, 2, 3, 7, 13, 64}) {
        BOOST_TEST_CONTEXT("step " << step) {
            auto d = run(req, step);
            BOOST_TEST(static_cast<int>(d.final) == static_cast<int>(state::complete));
            BOOST_TEST(d.body == "hello world");
            BOOST_TEST(d.rest.substr(0, next.size()) == next);
            BOOST_TEST(d.head.method == "POST");
            BOOST_TEST(d.head.target == "/up?x=1");
            BOOST_TEST(static_cast<int>(d.head.framing) == static_cast<int>(aqd::body_framing::chunked));
        }
    }
}

BOOST_AUTO_TEST_CASE(every_split_decodes_a_content_length_request_the_same_way) {
    const std::string req = "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\nhello world" + next;
    for (std::size_t step : {0, 1, 5, 11}) {
        BOOST_TEST_CONTEXT("step " << step) {
            auto d = run(req, step);
            BOOST_TEST(static_cast<int>(d.final) == static_cast<int>(state::complete));
            BOOST_TEST(d.body == "hello world");
            BOOST_TEST(d.rest.substr(0, next.size()) == next);
            BOOST_TEST(d.head.content_length == 11u);
            BOOST_TEST(d.head.expect_continue);
            BOOST_TEST(d.head.keep_alive);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_request_without_a_body_leaves_the_next_request_alone) {
    auto d = run("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + next, 3);
    BOOST_TEST(static_cast<int>(d.final) == static_cast<int>(state::complete));
    BOOST_TEST(d.body.empty());
    BOOST_TEST(!d.head.keep_alive);
    BOOST_TEST(d.rest.substr(0, next.size()) == next);
}

BOOST_AUTO_TEST_CASE(refusals_are_the_same_for_every_split) {
    struct refusal {
        std::string bytes;
        int status;
    };
    const std::vector<refusal> cases = {
        {"GET / HTTP/1.1\nHost: t\n\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: 1\r\n\r\n", 400},
        {"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505},
    };
    for (auto& c : cases)
        for (std::size_t step : {0, 1, 4}) {
            BOOST_TEST_CONTEXT(c.bytes << " in steps of " << step) {
                auto d = run(c.bytes, step);
                BOOST_TEST(static_cast<int>(d.final) == static_cast<int>(state::failed));
                BOOST_TEST(d.status == c.status);
                BOOST_TEST(!d.message.empty());
            }
        }
}

BOOST_AUTO_TEST_CASE(a_bare_lf_is_refused_before_the_head_ends) {
    request_decoder d(16384);
    std::string body;
    d.feed("GET / HTTP/1.1\r\nHost: t\n", body);
    BOOST_TEST(static_cast<int>(d.current()) == static_cast<int>(state::failed));
    BOOST_TEST(d.error().status == 400);
}

BOOST_AUTO_TEST_CASE(a_head_over_the_limit_is_431_and_one_at_the_limit_is_fine) {
    const std::string start = "GET / HTTP/1.1\r\nHost: t\r\nX: ";
    const std::string end = "\r\n\r\n";
    const std::size_t limit = 1024;
    auto at_limit = run(start + std::string(limit - start.size() - end.size(), 'a') + end, 100, limit);
    BOOST_TEST(static_cast<int>(at_limit.final) == static_cast<int>(state::complete));
    auto over = run(start + std::string(limit - start.size() - end.size() + 1, 'a') + end, 100, limit);
    BOOST_TEST(static_cast<int>(over.final) == static_cast<int>(state::failed));
    BOOST_TEST(over.status == 431);
}

BOOST_AUTO_TEST_CASE(endless_chunk_lines_and_trailers_are_bounded) {
    const std::string head = "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto line = run(head + "5;" + std::string(request_decoder::max_chunk_line, 'a'), 512);
    BOOST_TEST(static_cast<int>(line.final) == static_cast<int>(state::failed));
    BOOST_TEST(line.status == 400);
    std::string trailers;
    for (int i = 0; i < 100; ++i) trailers += "X-T" + std::to_string(i) + ": " + std::string(100, 'v') + "\r\n";
    auto big = run(head + "0\r\n" + trailers + "\r\n", 0, 4096);
    BOOST_TEST(static_cast<int>(big.final) == static_cast<int>(state::failed));
    BOOST_TEST(big.status == 431);
}
