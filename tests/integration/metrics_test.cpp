// GET /metrics: the host's and the plugins' metrics in the Prometheus text format. A scrape,
// requests, and a second scrape on the same connection show exact increments (the server
// records a request before it reads the next one on a connection, so the order is fixed);
// promtool accepts the output; the config decides who may scrape.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include "envelope.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_connection.hpp"
#include "support/wait_until.hpp"
#include "testplug.hpp"

#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
namespace prom = aqt::prometheus;

namespace {

// One keep-alive connection that sends raw bytes and keeps the exact bytes of each response.
struct wire {
    explicit wire(const aqt::gateway& gw) : gw(gw), conn(gw.port()) {}
    const aqt::gateway& gw;
    aqt::raw::connection conn;
    std::uint64_t sent = 0, received = 0;

    aqt::http::response exchange(const std::string& bytes) {
        BOOST_TEST_REQUIRE(conn.send(bytes));
        auto r = conn.read_response(10s);
        BOOST_TEST_REQUIRE(aqt::raw::to_string(r.how) == std::string("data"));
        sent += bytes.size();
        received += r.data.size();
        return aqt::raw::parse_response(r.data);
    }
    std::string scrape_bytes() const { return "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") + "\r\n\r\n"; }
    prom::samples scrape() {
        auto r = exchange(scrape_bytes());
        BOOST_TEST_REQUIRE(r.status == 200);
        return prom::parse(r.body);
    }
};

std::string scrape_text(const aqt::gateway& gw) {
    aqt::http::client c(gw.port());
    auto r = c.get("/metrics", {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    return r.body;
}

constexpr const char* echo_ok = R"(aqueduct_http_requests_total{route="/echo",method="POST",status="200"})";

}  // namespace

BOOST_AUTO_TEST_CASE(a_scrape_shows_the_exact_increments_of_the_requests_between) {
    aqt::gateway gw(aqt::with_testplug());
    wire w(gw);
    const auto before = w.scrape();
    const std::uint64_t sent_before = w.sent, received_before = w.received;  // includes the first scrape

    for (std::size_t size : {0u, 17u, 70000u}) {
        const std::string body(size, 'x');
        auto r = w.exchange("POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
                            "\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + body);
        BOOST_TEST(r.status == 200);
    }
    BOOST_TEST(w.exchange("GET /no/such/thing HTTP/1.1\r\nHost: t\r\n\r\n").status == 404);
    BOOST_TEST(w.exchange("GET /items/abc%20d HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong\r\n\r\n").status == 401);
    const std::uint64_t sent_between = w.sent - sent_before, received_between = w.received - received_before;
    const std::uint64_t first_scrape_in = w.scrape_bytes().size();
    const std::uint64_t first_scrape_out = received_before;

    const auto after = w.scrape();
    BOOST_TEST(prom::delta(before, after, echo_ok) == 3);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_requests_total{route="unmatched",method="GET",status="404"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_requests_total{route="/items/{id}",method="GET",status="401"})") == 1);
    // The first scrape was recorded once it was answered; the second is not in its own output.
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_requests_total{route="/metrics",method="GET",status="200"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_request_duration_seconds_count{route="/echo",method="POST"})") == 3);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_request_duration_seconds_bucket{route="/echo",method="POST",le="+Inf"})") == 3);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_request_duration_seconds_sum{route="/echo",method="POST"})") > 0);
    BOOST_TEST(prom::delta(before, after, "aqueduct_http_received_bytes_total") == double(sent_between + first_scrape_in));
    BOOST_TEST(prom::delta(before, after, "aqueduct_http_sent_bytes_total") == double(received_between + first_scrape_out));
    BOOST_TEST(prom::value(after, "aqueduct_http_connections_open") == 1);
    BOOST_TEST(prom::value(after, "aqueduct_http_requests_in_flight") == 0);
    BOOST_TEST(prom::value(after, "aqueduct_handler_queue_depth") == 0);
    BOOST_TEST(prom::value(after, "aqueduct_spool_bytes") == 0);
}

BOOST_AUTO_TEST_CASE(plugin_metrics_are_exported_with_exact_values) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    BOOST_TEST(c.post("/metric/count?kind=upload&n=5", "").status == 200);
    BOOST_TEST(c.post("/metric/count?kind=upload&n=2", "").status == 200);
    BOOST_TEST(c.post("/metric/count?kind=purge", "").status == 200);
    BOOST_TEST(c.post("/metric/level?v=-3", "").status == 200);
    for (const char* v : {"0.5", "2000", "5e6"}) BOOST_TEST(c.post(std::string("/metric/observe?v=") + v, "").status == 200);

    const std::string text = scrape_text(gw);
    const auto s = prom::parse(text);
    BOOST_TEST(prom::value(s, R"(aqueduct_testplug_events_total{kind="upload"})") == 7);
    BOOST_TEST(prom::value(s, R"(aqueduct_testplug_events_total{kind="purge"})") == 1);
    BOOST_TEST(prom::value(s, "aqueduct_testplug_level") == -3);
    BOOST_TEST(prom::value(s, R"(aqueduct_testplug_size_bytes_bucket{le="1"})") == 1);
    BOOST_TEST(prom::value(s, R"(aqueduct_testplug_size_bytes_bucket{le="1024"})") == 1);
    BOOST_TEST(prom::value(s, R"(aqueduct_testplug_size_bytes_bucket{le="1.048576e+06"})") == 2);
    BOOST_TEST(prom::value(s, R"(aqueduct_testplug_size_bytes_bucket{le="+Inf"})") == 3);
    BOOST_TEST(prom::value(s, "aqueduct_testplug_size_bytes_count") == 3);
    BOOST_TEST(prom::value(s, "aqueduct_testplug_size_bytes_sum") == 5002000.5);
    BOOST_TEST(text.find("aqueduct_testplug_size_bytes_sum 5.0020005e+06\n") != std::string::npos, text);
    BOOST_TEST(text.find("# HELP aqueduct_testplug_events_total Events testplug was told to count, by kind.\n"
                         "# TYPE aqueduct_testplug_events_total counter\n") != std::string::npos, text);
    BOOST_TEST(text.find("# TYPE aqueduct_testplug_size_bytes histogram\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped_and_invalid_ones_refused) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    // kind = a"b\c<LF>d
    BOOST_TEST(c.post("/metric/count?kind=a%22b%5Cc%0Ad&n=4", "").status == 200);
    // Not UTF-8: the host refuses the series, the SDK throws, the handler answers 500.
    BOOST_TEST(c.post("/metric/count?kind=%FF", "").status == 500);
    const std::string text = scrape_text(gw);
    BOOST_TEST(text.find("aqueduct_testplug_events_total{kind=\"a\\\"b\\\\c\\nd\"} 4\n") != std::string::npos, text);
    BOOST_TEST(text.find("\xff") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(promtool_accepts_the_output) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    // Something in every family that gets series from traffic: requests, refusals, plugin metrics.
    c.post("/echo", "hello");
    c.get("/nope");
    c.get("/whoami", {{"Authorization", "Bearer nope"}});
    c.post("/metric/count?kind=a%22b%5Cc%0Ad", "");
    c.post("/metric/observe?v=3", "");
    // Once testplug's 20 ms job has run, job metrics have series.
    std::string text;
    BOOST_TEST(aqt::wait_until(
                   [&] {
                       text = scrape_text(gw);
                       return text.find("aqueduct_job_runs_total{plugin=\"testplug\",job=\"tick\"}") != std::string::npos;
                   },
                   10s),
               text);
    const std::string problems = prom::promtool_problems(text);
    BOOST_TEST(problems.empty(), problems << "\n" << text);
}

BOOST_AUTO_TEST_CASE(job_runs_and_durations_are_counted) {
    aqt::gateway gw(aqt::with_testplug());
    const char* runs = R"(aqueduct_job_runs_total{plugin="testplug",job="tick"})";
    const char* count = R"(aqueduct_job_duration_seconds_count{plugin="testplug",job="tick"})";
    // The job runs every 20 ms: the count is there soon, and grows between two scrapes.
    prom::samples first, second;
    BOOST_TEST(aqt::wait_until([&] { return prom::value(first = prom::parse(scrape_text(gw)), runs) >= 1; }, 10s));
    BOOST_TEST(aqt::wait_until([&] { return prom::delta(first, second = prom::parse(scrape_text(gw)), runs) >= 1; }, 10s));
    // A scrape may fall between a run's two updates: the count trails by at most one.
    BOOST_TEST(prom::value(second, runs) - prom::value(second, count) <= 1);
    BOOST_TEST(prom::value(second, runs) - prom::value(second, count) >= 0);
}

BOOST_AUTO_TEST_CASE(refused_connections_and_requests_are_counted_by_reason) {
    aqt::gateway gw(aqt::with_testplug({{"max_connections", 2}, {"max_requests_per_principal", 1}}));
    wire w(gw);
    const auto before = w.scrape();
    // The principal's one place is taken by a slow request (5 s: longer than the checks below
    // take on a loaded machine); the next one of that token gets 429.
    aqt::http::client slow(gw.port());
    std::thread holder([&] { slow.get("/slow?ms=5000", {{"Authorization", gw.bearer("alice")}}); });
    BOOST_TEST_REQUIRE(gw.wait_for_log("slow request started"));
    BOOST_TEST(w.exchange("GET /whoami HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") + "\r\n\r\n").status == 429);
    // Two connections are open (w and slow): a third is refused at accept.
    {
        aqt::raw::connection third(gw.port());
        BOOST_TEST(aqt::raw::parse_response(third.read_until_close(5s).data).status == 503);
    }
    const auto during = w.scrape();
    BOOST_TEST(prom::value(during, "aqueduct_http_requests_in_flight") == 1);
    BOOST_TEST(prom::value(during, "aqueduct_http_connections_open") == 2);
    holder.join();
    // The slow request leaves the count when the server has finished writing its response,
    // which the client may see a moment before the server's completion handler has run.
    auto after = w.scrape();
    for (int i = 0; i < 250 && prom::value(after, "aqueduct_http_requests_in_flight") != 0; ++i) {
        std::this_thread::sleep_for(20ms);
        after = w.scrape();
    }
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_requests_refused_total{reason="principal_limit"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_requests_refused_total{reason="queue_full"})") == 0);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_connections_refused_total{reason="max_connections"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_http_requests_total{route="/whoami",method="GET",status="429"})") == 1);
    BOOST_TEST(prom::value(after, "aqueduct_http_requests_in_flight") == 0);
}

BOOST_AUTO_TEST_CASE(metrics_need_a_token_by_default) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    aqt::expect::error_envelope(c.get("/metrics"), {401, "invalid_request_error"});
    aqt::expect::error_envelope(c.get("/metrics", {{"Authorization", "Bearer wrong"}}),
                                {401, "invalid_request_error", "invalid_api_key"});
    BOOST_TEST(c.get("/metrics", {{"Authorization", gw.bearer("bob")}}).status == 200);
    auto posted = c.post("/metrics", "", {{"Authorization", gw.bearer("bob")}});
    BOOST_TEST(posted.status == 405);
    BOOST_TEST(posted.header("allow") == "GET");
}

BOOST_AUTO_TEST_CASE(public_metrics_need_no_token_and_off_means_no_endpoint) {
    aqt::gateway open_gw(aqt::with_testplug({{"metrics", "public"}}));
    aqt::http::client c(open_gw.port());
    auto r = c.get("/metrics");
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    aqt::gateway off_gw(aqt::with_testplug({{"metrics", "off"}}));
    aqt::http::client d(off_gw.port());
    BOOST_TEST(d.get("/metrics", {{"Authorization", off_gw.bearer("alice")}}).status == 404);
}

BOOST_AUTO_TEST_CASE(a_plugin_metric_that_breaks_the_rules_fails_init_with_the_reason) {
    const std::pair<const char*, const char*> cases[] = {
        {"uppercase", "metric aqueduct_Testplug_total: the name must be lowercase snake case"},
        {"counter_without_total", "metric aqueduct_testplug_things: a counter's name ends in _total"},
        {"gauge_with_total", "metric aqueduct_testplug_level_total: only a counter's name ends in _total"},
        {"taken", "metric aqueduct_http_requests_total is already registered"},
        {"le_label", "metric aqueduct_testplug_h: a histogram may not have a label named le"},
        {"no_buckets", "metric aqueduct_testplug_h: a histogram needs 1 to 64 bucket bounds"},
        {"unsorted_buckets", "metric aqueduct_testplug_h: bucket bounds must increase strictly"},
    };
    for (const auto& [name, reason] : cases) {
        auto failure = aqt::expect_startup_failure(
            json::object{{"plugins", {{"testplug", {{"enabled", true}, {"bad_metric", name}}}}}});
        BOOST_TEST(failure.status.code != 0, name);
        BOOST_TEST(failure.log.find(reason) != std::string::npos, name << ": " << failure.log);
        BOOST_TEST(failure.log.find("plugin testplug: init failed") != std::string::npos, failure.log);
    }
}
