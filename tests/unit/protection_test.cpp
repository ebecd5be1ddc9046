// The small parts behind the host's self-protection, in isolation: the transfer-rate meter, the
// per-principal admission, the spool and its budget, the response rules and the Date header.
#define BOOST_TEST_MODULE protection
#include <boost/test/unit_test.hpp>

#include "admission.hpp"
#include "body_spool.hpp"
#include "http_date.hpp"
#include "response_head.hpp"
#include "response_rules.hpp"
#include "transfer_rate.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <string>

using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(transfer_rate_gives_a_whole_window_then_demands_the_rate) {
    aqd::transfer_rate rate(1000, 2000ms);  // 2000 bytes per 2 s window
    BOOST_TEST(rate.required() == 2000u);
    rate.moved(1999);
    BOOST_TEST(rate.waited(1999ms));  // the window is not over yet
    BOOST_TEST(!rate.waited(1ms));    // over, with one byte too few
    BOOST_TEST(rate.failed_window_bytes() == 1999u);

    aqd::transfer_rate ok(1000, 2000ms);
    ok.moved(2000);
    BOOST_TEST(ok.waited(2000ms));  // enough: the next window starts empty
    BOOST_TEST(!ok.waited(2000ms));
}

BOOST_AUTO_TEST_CASE(transfer_rate_counts_only_waiting_time) {
    aqd::transfer_rate rate(1000, 1000ms);
    rate.moved(10);
    BOOST_TEST(rate.waited(600ms));
    BOOST_TEST(rate.wait_left() == std::chrono::steady_clock::duration(400ms));
    aqd::transfer_rate off(0, 1000ms);
    BOOST_TEST(!off.enabled());
    BOOST_TEST(off.waited(1h));
}

BOOST_AUTO_TEST_CASE(admission_limits_each_principal_separately_and_gives_places_back) {
    aqd::admission a(2);
    auto t1 = a.try_enter("alice");
    auto t2 = a.try_enter("alice");
    BOOST_TEST(static_cast<bool>(t1));
    BOOST_TEST(static_cast<bool>(t2));
    BOOST_TEST(!a.try_enter("alice"));
    BOOST_TEST(static_cast<bool>(a.try_enter("bob")));
    BOOST_TEST(a.in_flight("alice") == 2u);
    { auto gone = std::move(t1); }
    BOOST_TEST(a.in_flight("alice") == 1u);
    BOOST_TEST(static_cast<bool>(a.try_enter("alice")));
    t2 = {};
    BOOST_TEST(a.in_flight("alice") == 0u);
}

BOOST_AUTO_TEST_CASE(spool_keeps_small_bodies_in_memory_and_large_ones_in_a_file) {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path dir = tmp && *tmp ? tmp : "/tmp";
    aqd::spool_budget budget(0);
    std::string body;
    for (int i = 0; i < 300000; ++i) body.push_back(static_cast<char>(i * 7));
    aqd::body_spool spool(dir, 65536, budget);
    BOOST_TEST(spool.append(std::string_view(body).substr(0, 1000)));
    BOOST_TEST(!spool.on_disk());
    BOOST_TEST(spool.append(std::string_view(body).substr(1000)));
    BOOST_TEST(spool.on_disk());
    BOOST_TEST(spool.size() == body.size());
    BOOST_TEST(budget.used() == body.size());
    spool.finish();
    std::string back;
    char buf[7777];
    while (auto n = spool.read(buf, sizeof buf)) {
        BOOST_TEST_REQUIRE(n > 0);
        back.append(buf, static_cast<std::size_t>(n));
    }
    BOOST_TEST((back == body));
}

// A streaming body: the reader waits for bytes still arriving, gets 0 once the body is
// finished, and -ECONNABORTED (after what did arrive) once it is abandoned.
BOOST_AUTO_TEST_CASE(a_spool_read_while_the_body_arrives_waits_for_its_bytes) {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path dir = tmp && *tmp ? tmp : "/tmp";
    aqd::spool_budget budget(0);
    std::string body;
    for (int i = 0; i < 400000; ++i) body.push_back(static_cast<char>(i * 13 + i / 1000));
    for (const bool completes : {true, false}) {
        aqd::body_spool spool(dir, 4096, budget);
        BOOST_TEST_REQUIRE(spool.append(std::string_view(body).substr(0, 4096)));
        BOOST_TEST(spool.memory_part_complete());
        std::string back;
        std::int64_t last = 1;
        std::thread reader([&] {
            char buf[5000];
            while ((last = spool.read(buf, sizeof buf)) > 0) back.append(buf, static_cast<std::size_t>(last));
        });
        // The writer, in pieces, while the reader reads.
        for (std::size_t at = 4096; at < body.size(); at += 30000) {
            BOOST_TEST_REQUIRE(spool.append(std::string_view(body).substr(at, 30000)));
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (completes) spool.finish();
        else spool.abandon();
        reader.join();
        BOOST_TEST((back == body));
        BOOST_TEST(last == (completes ? 0 : -ECONNABORTED));
    }
    BOOST_TEST(budget.used() == 0u);
}

// Streaming through memory: bytes already in the file are read first, then the window's. A
// full window holds the writer; the reader taking half of it calls on_room once; an abandoned
// body still gives the reader what arrived, then -ECONNABORTED.
BOOST_AUTO_TEST_CASE(a_streaming_window_holds_the_writer_until_the_reader_takes_half) {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path dir = tmp && *tmp ? tmp : "/tmp";
    aqd::spool_budget budget(0);
    std::string body;
    for (int i = 0; i < 300000; ++i) body.push_back(static_cast<char>(i * 31 + i / 977));
    for (const bool completes : {true, false}) {
        aqd::body_spool spool(dir, 4096, budget);
        BOOST_TEST_REQUIRE(spool.append(std::string_view(body).substr(0, 50000)));  // memory, then file
        BOOST_TEST(spool.on_disk());
        std::atomic<int> rooms{0};
        spool.stream_through_memory(100000, [&] { ++rooms; });
        BOOST_TEST(!spool.hold());  // an empty window
        BOOST_TEST_REQUIRE(spool.append(std::string_view(body).substr(50000, 60000)));
        BOOST_TEST(!spool.hold());  // 60000 of 100000
        BOOST_TEST_REQUIRE(spool.append(std::string_view(body).substr(110000, 40000)));
        BOOST_TEST(spool.hold());  // full: the writer stops
        BOOST_TEST(spool.size() == 150000u);

        std::string back;
        char buf[7000];
        // The memory part and the file: no room is made in the window.
        while (back.size() < 50000) {
            const auto n = spool.read(buf, std::min<std::size_t>(sizeof buf, 50000 - back.size()));
            BOOST_TEST_REQUIRE(n > 0);
            back.append(buf, static_cast<std::size_t>(n));
        }
        BOOST_TEST(rooms.load() == 0);
        // The window: room once 50000 of its 100000 bytes are left, and only then.
        while (back.size() < 150000) {
            const auto n = spool.read(buf, sizeof buf);
            BOOST_TEST_REQUIRE(n > 0);
            back.append(buf, static_cast<std::size_t>(n));
            BOOST_TEST(rooms.load() == (back.size() >= 100000 ? 1 : 0));
        }
        // The writer goes on; the rest through the window, then the end.
        BOOST_TEST_REQUIRE(spool.append(std::string_view(body).substr(150000)));
        if (completes) spool.finish();
        else spool.abandon();
        std::int64_t last;
        while ((last = spool.read(buf, sizeof buf)) > 0) back.append(buf, static_cast<std::size_t>(last));
        BOOST_TEST((back == body));
        BOOST_TEST(last == (completes ? 0 : -ECONNABORTED));
        BOOST_TEST(rooms.load() == 1);  // never held again: the window was not full
    }
    BOOST_TEST(budget.used() == 0u);
}

BOOST_AUTO_TEST_CASE(spool_budget_refuses_what_does_not_fit_and_returns_on_destruction) {
    aqd::spool_budget budget(1000);
    {
        aqd::body_spool a("/tmp", 65536, budget);
        BOOST_TEST(a.reserve_total(800));
        aqd::body_spool b("/tmp", 65536, budget);
        BOOST_TEST(!b.reserve_total(300));
        BOOST_TEST(b.append(std::string(200, 'x')));
        BOOST_TEST(!b.append("x"));
        BOOST_TEST(budget.used() == 1000u);
    }
    BOOST_TEST(budget.used() == 0u);
}

BOOST_AUTO_TEST_CASE(spool_dir_that_cannot_hold_files_is_refused) {
    BOOST_CHECK_THROW(aqd::body_spool::check_dir("/nonexistent/spool"), std::system_error);
}

BOOST_AUTO_TEST_CASE(response_rules_name_what_is_wrong) {
    auto h = [](const char* n, std::string_view v) { return aq_header{{n, std::strlen(n)}, {v.data(), v.size()}}; };
    BOOST_TEST(!aqd::check_status(200));
    BOOST_TEST(*aqd::check_status(199) == "status 199 is outside 200..599");
    BOOST_TEST(*aqd::check_body(204, 1) == "status 204 may not carry a body");
    BOOST_TEST(!aqd::check_body(204, 0));
    const aq_header fine[] = {h("X-Ok", "a\tb \xc3\xa9")};
    BOOST_TEST(!aqd::check_headers(fine, 1));
    const aq_header split[] = {h("X-A", "a\r\nX-B: 1")};
    BOOST_TEST(*aqd::check_headers(split, 1) == "header X-A has a control character in its value: a\\x0d\\x0aX-B: 1");
    const aq_header owned[] = {h("content-length", "1")};
    BOOST_TEST(*aqd::check_headers(owned, 1) == "header content-length is set by the host");
    const aq_header name[] = {h("A B", "1")};
    BOOST_TEST(*aqd::check_headers(name, 1) == "header name A B is not a token");
}

BOOST_AUTO_TEST_CASE(date_is_imf_fixdate_and_every_head_carries_it) {
    char out[29];
    aqd::format_http_date(784111777, out);  // RFC 9110's example instant
    BOOST_TEST(std::string(out, 29) == "Sun, 06 Nov 1994 08:49:37 GMT");
    aqd::response_head head;
    head.status = 204;
    head.framing = aqd::response_framing::none;
    const std::string text = head.serialize();
    BOOST_TEST(text.find("Date: " + std::string(aqd::http_date_now()) + "\r\n") != std::string::npos, text);
    BOOST_TEST(text.find("Content-Length") == std::string::npos, text);
}
