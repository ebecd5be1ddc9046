// The access log: one JSON line per request with exact fields (bytes as sent on the wire, the
// token's name and never the token), to a file that is reopened on SIGUSR1 and SIGHUP after
// logrotate moved it, or to stdout.
#define BOOST_TEST_MODULE access_log
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/raw_connection.hpp"
#include "testplug.hpp"

#include <boost/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::vector<json::object> lines_of(const std::string& text) {
    std::vector<json::object> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line.front() == '{') out.push_back(json::parse(line).as_object());
    return out;
}

// Waits until the file holds at least `n` JSON lines.
std::vector<json::object> wait_lines(const fs::path& p, std::size_t n, std::chrono::milliseconds within = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
        auto lines = lines_of(read_file(p));
        if (lines.size() >= n || std::chrono::steady_clock::now() >= deadline) return lines;
        std::this_thread::sleep_for(10ms);
    }
}

const json::object* with_id(const std::vector<json::object>& lines, std::string_view id) {
    for (const auto& l : lines)
        if (l.at("request_id").as_string() == id) return &l;
    return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_json_line_per_request_with_exact_fields) {
    aqt::gateway gw(aqt::with_testplug({{"access_log", "access.log"}}));
    const fs::path file = gw.dir() / "access.log";
    aqt::raw::connection conn(gw.port());
    const std::string echo = "POST /v1/echo HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                             "\r\nx-request-id: al-1\r\nContent-Length: 5\r\n\r\nhello";
    BOOST_TEST_REQUIRE(conn.send(echo));
    const std::string echo_response = conn.read_response(5s).data;
    const std::string lost = "GET /no/such?x=1 HTTP/1.1\r\nHost: t\r\nx-request-id: al-2\r\n\r\n";
    BOOST_TEST_REQUIRE(conn.send(lost));
    const std::string lost_response = conn.read_response(5s).data;

    const auto lines = wait_lines(file, 2);
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    const json::object& a = lines[0];
    BOOST_TEST(a.size() == 11u, json::serialize(a));
    BOOST_TEST(a.at("request_id") == "al-1");
    BOOST_TEST(a.at("client") == "127.0.0.1");
    BOOST_TEST(a.at("method") == "POST");
    BOOST_TEST(a.at("route") == "/echo");
    BOOST_TEST(a.at("path") == "/v1/echo");
    BOOST_TEST(a.at("status") == 200);
    BOOST_TEST(a.at("bytes_in").to_number<std::uint64_t>() == echo.size());
    BOOST_TEST(a.at("bytes_out").to_number<std::uint64_t>() == echo_response.size());
    BOOST_TEST(a.at("token") == "alice");
    BOOST_TEST(a.at("duration_ms").is_double());
    BOOST_TEST(a.at("duration_ms").as_double() >= 0.0);
    const std::string time(a.at("time").as_string());
    BOOST_TEST(std::regex_match(time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")), time);

    const json::object& b = lines[1];
    BOOST_TEST(b.at("request_id") == "al-2");
    BOOST_TEST(b.at("route").is_null());
    BOOST_TEST(b.at("path") == "/no/such");
    BOOST_TEST(b.at("status") == 404);
    BOOST_TEST(b.at("token").is_null());
    BOOST_TEST(b.at("bytes_in").to_number<std::uint64_t>() == lost.size());
    BOOST_TEST(b.at("bytes_out").to_number<std::uint64_t>() == lost_response.size());

    // The token itself is nowhere: not in the access log, not in the log.
    BOOST_TEST(read_file(file).find(gw.token("alice")) == std::string::npos);
    BOOST_TEST(gw.log().find(gw.token("alice")) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_request_whose_client_left_before_the_answer_is_logged_as_499) {
    aqt::gateway gw(aqt::with_testplug({{"access_log", "access.log"}}));
    const std::string head = "POST /count HTTP/1.1\r\nHost: t\r\nx-request-id: gone-1\r\nAuthorization: " +
                             gw.bearer("bob") + "\r\nContent-Length: 1000\r\n\r\n";
    {
        aqt::raw::connection conn(gw.port());
        BOOST_TEST_REQUIRE(conn.send(head + std::string(10, 'b')));
        std::this_thread::sleep_for(100ms);  // the head and the 10 bytes are read
    }  // gone halfway through the body: no response ever began
    const auto lines = wait_lines(gw.dir() / "access.log", 1);
    const json::object* l = with_id(lines, "gone-1");
    BOOST_TEST_REQUIRE(l);
    BOOST_TEST(l->at("status") == 499);
    BOOST_TEST(l->at("route") == "/count");
    BOOST_TEST(l->at("token") == "bob");
    BOOST_TEST(l->at("bytes_in").to_number<std::uint64_t>() == head.size() + 10);
    BOOST_TEST(l->at("bytes_out") == 0);
}

BOOST_AUTO_TEST_CASE(the_file_is_reopened_on_sigusr1_and_sighup_after_it_was_moved) {
    aqt::gateway gw(aqt::with_testplug({{"access_log", "access.log"}}));
    const fs::path file = gw.dir() / "access.log";
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/public", {{"x-request-id", "before-rotation"}}).status == 200);
    BOOST_TEST_REQUIRE(wait_lines(file, 1).size() == 1u);

    int round = 0;
    for (int sig : {SIGUSR1, SIGHUP}) {
        ++round;
        const fs::path rotated = gw.dir() / ("access.log." + std::to_string(round));
        fs::rename(file, rotated);
        // Written after the move but before the signal: the old file (what logrotate's
        // sharedscripts/postrotate window looks like).
        BOOST_TEST(c.get("/public", {{"x-request-id", "moved-" + std::to_string(round)}}).status == 200);
        // The rotated file holds the line before (or after the previous reopen) and the one just written.
        BOOST_TEST_REQUIRE(wait_lines(rotated, 2).size() == 2u);
        const std::size_t reopened = gw.log_count("access log reopened");
        gw.signal(sig);
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (gw.log_count("access log reopened") == reopened && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        BOOST_TEST_REQUIRE(gw.log_count("access log reopened") == reopened + 1);
        BOOST_TEST(c.get("/public", {{"x-request-id", "after-" + std::to_string(round)}}).status == 200);
        const auto fresh = wait_lines(file, 1);
        BOOST_TEST_REQUIRE(fresh.size() == 1u, read_file(file));
        BOOST_TEST(std::string(fresh[0].at("request_id").as_string()) == "after-" + std::to_string(round));
        BOOST_TEST(with_id(lines_of(read_file(rotated)), "after-" + std::to_string(round)) == nullptr);
    }
    BOOST_TEST(with_id(lines_of(read_file(gw.dir() / "access.log.1")), "before-rotation") != nullptr);
}

BOOST_AUTO_TEST_CASE(stdout_gets_the_lines_when_configured) {
    aqt::gateway gw(aqt::with_testplug({{"access_log", "stdout"}}));
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/public", {{"x-request-id", "to-stdout"}}).status == 200);
    BOOST_TEST(gw.wait_for_log(R"({"time":")"));
    BOOST_TEST(gw.wait_for_log(R"("request_id":"to-stdout","client":"127.0.0.1","method":"GET","route":"/public")"));
}

BOOST_AUTO_TEST_CASE(off_by_default) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/public").status == 200);
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(gw.log().find(R"({"time":")") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_access_log_that_cannot_be_opened_stops_the_start) {
    auto failure = aqt::expect_startup_failure(aqt::with_testplug({{"access_log", "/nonexistent-dir/access.log"}}));
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find("access_log /nonexistent-dir/access.log: No such file or directory") != std::string::npos,
               failure.log);
}
