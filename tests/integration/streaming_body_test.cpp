// A large body that arrives fast streams: once stream_bodies_after_bytes of it are in, its
// handler starts and reads the rest as it comes. At most max_streaming_bodies do so at once;
// a streaming client that vanishes or slows below the minimum rate is cut off, and its handler
// reads a disconnect (also while its connection holds); a handler that answers early ends the
// body and the connection.
#define BOOST_TEST_MODULE streaming_body
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "support/wait_until.hpp"
#include "testplug.hpp"

#include <atomic>
#include <thread>

#include <sys/socket.h>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t MiB = 1024 * 1024;

std::uint64_t count_gone(const aqt::gateway& gw) {
    aqt::http::client c(gw.port());
    return c.get("/counters", {{"Authorization", gw.bearer("alice")}}).json().at("count_gone").to_number<std::uint64_t>();
}

// Bytes that differ along the body, so a piece out of place changes the digest.
std::string body_of(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return s;
}

void expect_counted(const aqt::raw::read_result& got, const std::string& body) {
    const auto res = aqt::raw::parse_response(got.data);
    BOOST_TEST(res.status == 200);
    BOOST_TEST(res.json().at("bytes").to_number<std::uint64_t>() == body.size());
    BOOST_TEST(res.json().at("sha256").as_string() == aqt::sha256_hex(body));
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_large_fast_body_reaches_its_handler_while_it_arrives) {
    aqt::gateway gw(aqt::with_testplug());
    const std::string body = body_of(3 * MiB);
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 3 * MiB / 2)));
    BOOST_TEST(aqt::wait_until([&] { return aqt::count_handler_starts(gw) == 1; }, 10s),
               "starts: " << aqt::count_handler_starts(gw));
    BOOST_TEST_REQUIRE(conn.send(body.substr(3 * MiB / 2)));
    expect_counted(conn.read_response(20s), body);

    // The connection is kept for the next request, which starts where the body ended.
    BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, 5) + "hello"));
    const auto next = aqt::raw::parse_response(conn.read_response(10s).data);
    BOOST_TEST(next.status == 200);
    BOOST_TEST(next.json().at("sha256").as_string() == aqt::sha256_hex("hello"));
    BOOST_TEST(aqt::wait_until([&] { return aqt::spool_files(gw) == 0; }, 10s));
}

// A handler slower than its client: the body waits in the connection's 4 MiB window and, past
// it, in the client's socket (the connection stops reading), not in the spool file; once the
// handler reads on it gets every byte, in order, across the file, the window and the holds.
BOOST_AUTO_TEST_CASE(a_body_ahead_of_its_handler_waits_in_memory_and_in_the_socket_not_on_disk) {
    aqt::gateway gw(aqt::with_testplug());
    const std::string body = body_of(48 * MiB);
    const long long rss_before = aqt::status_kib(gw.pid(), "VmRSS");
    aqt::raw::connection conn(gw.port());
    std::atomic<bool> sent{false};
    bool sent_ok = false;
    std::thread sender([&] {
        sent_ok = conn.send("POST /count?pause_after=" + std::to_string(2 * MiB) +
                            "&pause_ms=6000 HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        sent = true;
    });
    BOOST_TEST(gw.wait_for_log("count paused after " + std::to_string(2 * MiB) + " bytes"));
    // A second of the pause: time in which a connection that kept reading would have taken
    // much of the body (loopback moves hundreds of MiB a second).
    std::this_thread::sleep_for(1s);
    // Nothing past the first MiB (received before the body streamed) went to the spool file,
    // and the client could not hand over the body: 48 MiB do not fit in the window and the
    // socket buffers.
    BOOST_TEST(aqt::spool_bytes(gw) <= MiB);
    BOOST_TEST(!sent.load());
    // Nor is it in memory beyond the window (and its spare blocks, and the handler's buffer).
    BOOST_TEST(aqt::status_kib(gw.pid(), "VmRSS") - rss_before <= 16 * 1024);
    sender.join();
    BOOST_TEST(sent_ok);
    expect_counted(conn.read_response(60s), body);
    BOOST_TEST(aqt::wait_until([&] { return aqt::spool_files(gw) == 0; }, 10s));
}

// A client that goes away while its connection holds (the handler paused, the window full): the
// handler, once it reads on, gets the window's bytes and then a disconnect; nothing stays in the
// spool directory, and the gateway serves the next body whole.
BOOST_AUTO_TEST_CASE(a_client_vanishing_while_its_connection_holds_reaches_its_handler_as_a_disconnect) {
    aqt::gateway gw(aqt::with_testplug());
    const std::string body = body_of(48 * MiB);
    {
        aqt::raw::connection conn(gw.port());
        std::atomic<bool> sent{false};
        std::thread sender([&] {
            conn.send("POST /count?pause_after=" + std::to_string(2 * MiB) +
                      "&pause_ms=5000 HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
            sent = true;
        });
        BOOST_TEST_REQUIRE(gw.wait_for_log("count paused after " + std::to_string(2 * MiB) + " bytes"));
        std::this_thread::sleep_for(500ms);
        BOOST_TEST(!sent.load());  // held: the body cannot all be handed over
        ::shutdown(conn.fd(), SHUT_RDWR);
        sender.join();
    }  // closed
    BOOST_TEST(aqt::wait_until([&] { return count_gone(gw) == 1; }, 10s), "gone: " << count_gone(gw));
    BOOST_TEST(aqt::wait_until([&] { return aqt::spool_files(gw) == 0; }, 10s));

    const std::string small = body_of(3 * MiB);
    aqt::raw::connection next(gw.port());
    BOOST_TEST_REQUIRE(next.send(aqt::count_upload_head(gw, small.size()) + small));
    expect_counted(next.read_response(20s), small);
}

BOOST_AUTO_TEST_CASE(small_chunked_and_unstreamed_bodies_reach_their_handler_whole) {
    aqt::gateway gw(aqt::with_testplug({{"stream_bodies_after_bytes", 2 * MiB}}));
    const std::string body = body_of(3 * MiB);

    // Below the threshold: 1.5 MiB of 3 MiB in, no handler.
    aqt::raw::connection below(gw.port());
    BOOST_TEST_REQUIRE(below.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 3 * MiB / 2)));
    // A chunked body never streams: its length is unknown, so it could not be reserved.
    aqt::raw::connection chunked(gw.port());
    const std::string head = "POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                             "\r\nTransfer-Encoding: chunked\r\n\r\n";
    BOOST_TEST_REQUIRE(chunked.send(head + "280000\r\n" + body.substr(0, 0x280000) + "\r\n"));
    // Nothing observable happens when a handler does not start: give the gateway time in which
    // a streaming start would have been seen (it took milliseconds in the case above).
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(aqt::count_handler_starts(gw) == 0u);

    BOOST_TEST_REQUIRE(below.send(body.substr(3 * MiB / 2)));
    expect_counted(below.read_response(20s), body);
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", body.size() - 0x280000);
    BOOST_TEST_REQUIRE(chunked.send(size_line + body.substr(0x280000) + "\r\n0\r\n\r\n"));
    expect_counted(chunked.read_response(20s), body);
    BOOST_TEST(aqt::count_handler_starts(gw) == 2u);
}

BOOST_AUTO_TEST_CASE(at_most_max_streaming_bodies_stream_at_once) {
    aqt::gateway gw(aqt::with_testplug({{"max_streaming_bodies", 1}}));
    const std::string body = body_of(3 * MiB);
    aqt::raw::connection first(gw.port()), second(gw.port());
    BOOST_TEST_REQUIRE(first.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 2 * MiB)));
    BOOST_TEST(aqt::wait_until([&] { return aqt::count_handler_starts(gw) == 1; }, 10s));
    BOOST_TEST_REQUIRE(second.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 2 * MiB)));
    std::this_thread::sleep_for(500ms);  // as above: time in which a second start would be seen
    BOOST_TEST(aqt::count_handler_starts(gw) == 1u);

    // The second is spooled whole and handled once complete; the first finishes streaming.
    BOOST_TEST_REQUIRE(second.send(body.substr(2 * MiB)));
    expect_counted(second.read_response(20s), body);
    BOOST_TEST(aqt::count_handler_starts(gw) == 2u);
    BOOST_TEST_REQUIRE(first.send(body.substr(2 * MiB)));
    expect_counted(first.read_response(20s), body);
}

BOOST_AUTO_TEST_CASE(a_client_vanishing_mid_stream_reaches_its_handler_as_a_disconnect) {
    aqt::gateway gw(aqt::with_testplug({{"workers", 4}}));
    const std::string body = body_of(3 * MiB);
    {
        aqt::raw::connection conn(gw.port());
        BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 2 * MiB)));
        BOOST_TEST_REQUIRE(aqt::wait_until([&] { return aqt::count_handler_starts(gw) == 1; }, 10s));
    }  // closed
    BOOST_TEST(aqt::wait_until([&] { return count_gone(gw) == 1; }, 10s), "gone: " << count_gone(gw));
    BOOST_TEST(aqt::wait_until([&] { return aqt::spool_files(gw) == 0; }, 10s));

    // Its place is free again: the next large body streams too.
    aqt::raw::connection next(gw.port());
    BOOST_TEST_REQUIRE(next.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 2 * MiB)));
    BOOST_TEST(aqt::wait_until([&] { return aqt::count_handler_starts(gw) == 2; }, 10s));
    BOOST_TEST_REQUIRE(next.send(body.substr(2 * MiB)));
    expect_counted(next.read_response(20s), body);
}

BOOST_AUTO_TEST_CASE(a_streaming_body_that_stops_is_cut_at_the_minimum_rate_and_its_handler_sees_a_disconnect) {
    aqt::gateway gw(aqt::with_testplug({{"min_body_rate_bytes_per_s", 100000}, {"body_rate_window_ms", 500}}));
    const std::string body = body_of(3 * MiB);
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send(aqt::count_upload_head(gw, body.size()) + body.substr(0, 2 * MiB)));
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return aqt::count_handler_starts(gw) == 1; }, 10s));
    // Then nothing: the handler owns the answer, so the cut closes the connection without one.
    const auto cut = conn.read_until_close(10s);
    BOOST_TEST(aqt::raw::to_string(cut.how) != aqt::raw::to_string(aqt::raw::ending::timeout));
    BOOST_TEST(cut.data == "");
    BOOST_TEST(gw.wait_for_log("request body slower than 100000 bytes/s"));
    BOOST_TEST(aqt::wait_until([&] { return count_gone(gw) == 1; }, 10s));

    aqt::http::client c(gw.port());
    const auto r = c.post("/count", std::string(1000, 'z'), {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST(r.status == 200);
}

BOOST_AUTO_TEST_CASE(a_handler_answering_before_the_end_closes_the_connection_after_its_answer) {
    aqt::gateway gw(aqt::with_testplug());
    const std::string body = body_of(4 * MiB);
    aqt::raw::connection conn(gw.port());
    const std::string head = "POST /count?answer_after=1500000 HTTP/1.1\r\nHost: t\r\nAuthorization: " +
                             gw.bearer("alice") + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    BOOST_TEST_REQUIRE(conn.send(head + body.substr(0, 2 * MiB)));
    const auto got = conn.read_response(20s);
    const auto res = aqt::raw::parse_response(got.data);
    BOOST_TEST(res.status == 400);
    BOOST_TEST(res.body == R"({"read":1500000})");
    BOOST_TEST(res.header("connection") == "close");
    // The rest of the body is not read: the connection ends after the answer.
    const auto end = conn.read_until_close(10s);
    BOOST_TEST(aqt::raw::to_string(end.how) != aqt::raw::to_string(aqt::raw::ending::timeout));
    BOOST_TEST(end.data == "");
    BOOST_TEST(aqt::wait_until([&] { return aqt::spool_files(gw) == 0; }, 10s));
}

// The same early answer from a handler that had fallen behind (the connection held, not
// reading): the connection answers and closes all the same.
BOOST_AUTO_TEST_CASE(a_handler_answering_while_its_connection_holds_closes_it_after_its_answer) {
    aqt::gateway gw(aqt::with_testplug());
    const std::string body = body_of(48 * MiB);
    aqt::raw::connection conn(gw.port());
    std::thread sender([&] {
        // Ends when the connection closes: most of the body is never read.
        conn.send("POST /count?pause_after=" + std::to_string(2 * MiB) + "&pause_ms=1000&answer_after=" +
                  std::to_string(8 * MiB) + " HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    });
    BOOST_TEST(gw.wait_for_log("count paused after " + std::to_string(2 * MiB) + " bytes"));
    const auto got = conn.read_response(30s);
    const auto res = aqt::raw::parse_response(got.data);
    BOOST_TEST(res.status == 400);
    BOOST_TEST(res.body == "{\"read\":" + std::to_string(8 * MiB) + "}");
    BOOST_TEST(res.header("connection") == "close");
    const auto end = conn.read_until_close(20s);
    BOOST_TEST(aqt::raw::to_string(end.how) != aqt::raw::to_string(aqt::raw::ending::timeout));
    BOOST_TEST(end.data == "");
    sender.join();
    BOOST_TEST(aqt::wait_until([&] { return aqt::spool_files(gw) == 0; }, 10s));
}

BOOST_AUTO_TEST_CASE(max_streaming_bodies_must_leave_workers_for_everyone_else) {
    auto failure = aqt::expect_startup_failure(aqt::with_testplug({{"workers", 2}, {"max_streaming_bodies", 2}}));
    BOOST_TEST(failure.status.exited);
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find("max_streaming_bodies: must be less than workers (2)") != std::string::npos,
               failure.log);
}
