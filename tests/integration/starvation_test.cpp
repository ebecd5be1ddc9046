// No client can starve another (issue 7, point 1): one token runs 200 uploads trickling a byte a
// second and 200 downloads that stopped reading, with its per-principal limit raised so that
// every one of them is admitted (the limit is not what is tested here: admission_test does
// that). Meanwhile another token lists, retrieves and uploads small files, and runs a 100-line
// batch, with the files and batches plugins and a fake upstream.
//
// Spooled request bodies and pulled downloads hold no thread at the slow client's pace, so the
// other token's requests all succeed (no 429, no 503, no timeout) with a p99 well under the
// issue's 200 ms, and the batch completes. The latency ratio against the same requests without
// the load is measured by the load program (tests/load/host_load.cpp).
#define BOOST_TEST_MODULE starvation
#include <boost/test/unit_test.hpp>

#include "fake_upstream.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/slow_clients.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace json = boost::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

std::string upload(aqt::http::client& c, const std::string& content, const std::string& purpose, const std::string& name) {
    aqt::multipart form;
    form.field("purpose", purpose).file("file", name, content);
    auto r = c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
    BOOST_REQUIRE_MESSAGE(r.status == 200, "upload: " << r.status << " " << r.body);
    return std::string(r.json().at("id").as_string());
}

std::string batch_lines(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        json::object body{{"model", "m1"}, {"user", "line" + std::to_string(i)},
                          {"messages", json::array{{{"role", "user"}, {"content", "hi"}}}}};
        s += json::serialize(json::object{{"custom_id", "line" + std::to_string(i)}, {"method", "POST"},
                                          {"url", "/v1/chat/completions"}, {"body", body}}) +
             "\n";
    }
    return s;
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_token_of_slow_clients_does_not_starve_another_token) {
    aqt::fake_upstream up;
    json::object upstream{{"name", "fake"}, {"base_url", up.base_url()}, {"models", json::array{"m1"}},
                          {"max_concurrency", 64}, {"timeout_seconds", 10}};
    aqt::gateway gw(json::object{
        {"max_requests_per_principal", 1000},
        {"min_body_rate_bytes_per_s", 0},  // the trickles must live through the whole test
        {"plugins",
         {{"files", {{"enabled", true}, {"purposes", json::array{"batch", "user_data"}}}},
          {"batches",
           {{"enabled", true}, {"requires", json::array{"files"}}, {"upstreams", json::array{upstream}},
            {"poll_interval_ms", 50}}}}}});

    aqt::http::client alice(gw.port(), 60s);
    alice.default_headers["Authorization"] = gw.bearer("alice");
    std::string big(4 << 20, '\0');
    std::mt19937 gen(7);
    for (auto& c : big) c = static_cast<char>(gen());
    const std::string download_id = upload(alice, big, "user_data", "big.bin");

    aqt::http::client bob(gw.port(), 10s);
    bob.default_headers["Authorization"] = gw.bearer("bob");
    const std::string input = upload(bob, batch_lines(100), "batch", "input.jsonl");

    aqt::slow_clients load(gw.port(), gw.bearer("alice"), "/v1/files/" + download_id + "/content", 200, 200);
    BOOST_TEST(load.downloads_started() == 200);

    auto created = bob.request("POST", "/v1/batches", {{"Content-Type", "application/json"}},
                               json::serialize(json::object{{"input_file_id", input},
                                                            {"endpoint", "/v1/chat/completions"},
                                                            {"completion_window", "24h"}}));
    BOOST_TEST_REQUIRE(created.status == 200, created.body);
    const std::string batch_id(created.json().at("id").as_string());

    std::vector<double> ms;
    std::vector<int> statuses;
    auto timed = [&](auto&& call) {
        const auto start = clock_type::now();
        auto r = call();
        ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
        statuses.push_back(r.status);
    };
    for (int round = 0; round < 60; ++round) {
        timed([&] { return bob.get("/v1/files?limit=20"); });
        timed([&] { return bob.get("/v1/files/" + input); });
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", "small.txt", std::string(1024, 's'));
        timed([&] { return bob.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body()); });
    }
    for (std::size_t i = 0; i < statuses.size(); ++i) BOOST_TEST(statuses[i] == 200, "request " << i);
    const double p50 = percentile(ms, 0.5), p99 = percentile(ms, 0.99);
    BOOST_TEST_MESSAGE("other token under the slow load: " << ms.size() << " requests, p50 " << p50 << " ms, p99 "
                                                           << p99 << " ms");
    BOOST_TEST(p99 < 200.0);

    // The batch runs on job threads and upstream connections of its own: it completes.
    json::object b;
    const auto deadline = clock_type::now() + 60s;
    do {
        b = bob.get("/v1/batches/" + batch_id).json().as_object();
        if (b.at("status") == "completed" || b.at("status") == "failed") break;
        std::this_thread::sleep_for(100ms);
    } while (clock_type::now() < deadline);
    BOOST_TEST(b.at("status") == "completed", json::serialize(b));
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":100,"completed":100,"failed":0})"));

    // The slow clients were all admitted and are all still there.
    BOOST_TEST(load.uploads_pending() == 200);
    BOOST_TEST(load.upload_bytes_sent() > 0);
}
