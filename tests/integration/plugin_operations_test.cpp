// The files and batches plugins in operations: their metrics show the exact increments of what
// happened between two scrapes (uploads stored and refused by reason, bytes stored, the Uploads
// API's objects by event and their parts, batch lines by outcome, upstream requests by status,
// retries, latencies, batches by status, purge runs), and /readyz follows their database: a
// PostgreSQL stopped under the gateway makes it 503 naming both plugins, and started again makes
// it 200, without a restart.
#define BOOST_TEST_MODULE plugin_operations
#include <boost/test/unit_test.hpp>

#include "batch_input.hpp"
#include "fake_upstream.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/postgres.hpp"
#include "support/prometheus_text.hpp"
#include "support/wait_until.hpp"

#include <boost/json.hpp>

#include <set>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;
namespace prom = aqt::prometheus;

namespace {

json::object plugins_config(const aqt::fake_upstream& up, json::object top = {}) {
    json::object upstream{{"name", "fake"}, {"base_url", up.base_url()}, {"models", json::array{"m1"}},
                          {"max_concurrency", 8}, {"timeout_seconds", 5}};
    json::object batches{{"enabled", true},        {"requires", json::array{"files"}}, {"upstreams", json::array{upstream}},
                         {"poll_interval_ms", 50}, {"backoff_initial_ms", 10},         {"backoff_max_ms", 50},
                         {"max_attempts", 3}};
    json::object files{{"enabled", true}, {"purposes", json::array{"batch", "user_data"}}, {"expiry_interval_seconds", 1}};
    top["plugins"] = json::object{{"files", files}, {"batches", batches}};
    return top;
}

prom::samples scrape(const aqt::gateway& gw) {
    aqt::http::client c(gw.port());
    auto r = c.get("/metrics", {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    BOOST_TEST(prom::promtool_problems(r.body) == "");
    return prom::parse(r.body);
}

aqt::http::response upload(aqt::http::client& c, const std::string& filename, const std::string& content,
                           const std::string& purpose) {
    aqt::multipart form;
    if (!purpose.empty()) form.field("purpose", purpose);
    form.file("file", filename, content);
    return c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
}

}  // namespace

BOOST_AUTO_TEST_CASE(files_metrics_count_uploads_bytes_refusals_by_reason_and_purge_runs) {
    aqt::fake_upstream up;
    aqt::gateway gw(plugins_config(up));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    const auto before = scrape(gw);

    const std::string content = aqt::line("a") + aqt::line("b");
    BOOST_TEST(upload(c, "in.jsonl", content, "batch").status == 200);
    BOOST_TEST(upload(c, "notes.txt", "hello", "user_data").status == 200);
    BOOST_TEST(upload(c, "in.jsonl", content, "").status == 400);           // no purpose
    BOOST_TEST(upload(c, "in.txt", content, "batch").status == 400);        // not .jsonl
    BOOST_TEST(upload(c, "in.jsonl", "not json\n", "batch").status == 400); // a bad line
    BOOST_TEST(c.request("POST", "/v1/files", {{"Content-Type", "text/plain"}}, "x").status == 415);

    const auto after = scrape(gw);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_uploads_total{outcome="stored"})") == 2);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_uploads_total{outcome="rejected"})") == 4);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_uploads_total{outcome="unavailable"})") == 0);
    BOOST_TEST(prom::delta(before, after, "aqueduct_files_stored_bytes_total") == double(content.size() + 5));
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_upload_rejections_total{reason="purpose"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_upload_rejections_total{reason="file"})") == 2);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_upload_rejections_total{reason="unsupported_media_type"})") == 1);

    // The purge runs every second (expiry_interval_seconds 1, jitter a tenth): later scrapes see
    // at least one run, and none that failed.
    const auto first = scrape(gw);
    prom::samples second;
    BOOST_TEST(aqt::wait_until(
        [&] {
            second = scrape(gw);
            return prom::delta(first, second, R"(aqueduct_files_purge_runs_total{outcome="ok"})") >= 1;
        },
        15s));
    BOOST_TEST(prom::delta(before, second, R"(aqueduct_files_purge_runs_total{outcome="unavailable"})") == 0);
    BOOST_TEST(prom::delta(before, second, "aqueduct_files_purged_total") == 0);  // nothing expired yet
}

BOOST_AUTO_TEST_CASE(uploads_api_metrics_count_uploads_by_event_and_parts_with_their_bytes) {
    aqt::fake_upstream up;
    aqt::gateway gw(plugins_config(up));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto post_json = [&](const std::string& target, const json::object& body) {
        auto r = c.request("POST", target, {{"Content-Type", "application/json"}}, json::serialize(body));
        BOOST_TEST_REQUIRE(r.status == 200, target << ": " << r.body);
        return r.json().as_object();
    };
    auto add_part = [&](const std::string& upload, const std::string& data) {
        aqt::multipart form;
        form.file("data", "blob", data);
        return c.request("POST", "/v1/uploads/" + upload + "/parts", {{"Content-Type", form.content_type()}}, form.body());
    };
    const json::object create{{"bytes", 10}, {"filename", "notes.txt"}, {"mime_type", "text/plain"}, {"purpose", "user_data"}};
    const auto before = scrape(gw);

    const std::string kept(post_json("/v1/uploads", create).at("id").as_string());
    auto first = add_part(kept, "01234");
    auto second = add_part(kept, "56789");
    BOOST_TEST_REQUIRE(first.status == 200);
    BOOST_TEST_REQUIRE(second.status == 200);
    post_json("/v1/uploads/" + kept + "/complete",
              json::object{{"part_ids", json::array{first.json().at("id"), second.json().at("id")}}});
    const std::string dropped(post_json("/v1/uploads", create).at("id").as_string());
    BOOST_TEST(add_part(dropped, "abc").status == 200);
    BOOST_TEST(add_part(dropped, "").status == 400);  // refused: not counted
    post_json("/v1/uploads/" + dropped + "/cancel", {});
    BOOST_TEST(c.request("POST", "/v1/uploads/" + dropped + "/cancel", {}, "").status == 400);  // no longer pending

    const auto after = scrape(gw);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_upload_objects_total{event="created"})") == 2);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_upload_objects_total{event="completed"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_upload_objects_total{event="cancelled"})") == 1);
    BOOST_TEST(prom::delta(before, after, "aqueduct_files_upload_parts_total") == 3);
    BOOST_TEST(prom::delta(before, after, "aqueduct_files_upload_part_bytes_total") == 13);
    // Completing made a file, not a direct upload.
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_files_uploads_total{outcome="stored"})") == 0);
}

BOOST_AUTO_TEST_CASE(batches_metrics_count_lines_upstream_statuses_retries_latency_and_batches_by_status) {
    aqt::fake_upstream up;
    up.set_rule("flaky", aqt::fake_rule("status", 500, 1));  // one 500, then a 200: one retry
    up.set_rule("refused", aqt::fake_rule("status", 400));   // a 400 is final: no retry
    aqt::gateway gw(plugins_config(up));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    const auto before = scrape(gw);

    auto file = upload(c, "in.jsonl", aqt::line("ok1") + aqt::line("flaky") + aqt::line("refused") + aqt::line("ok2"),
                       "batch");
    BOOST_TEST_REQUIRE(file.status == 200, file.body);
    json::object body{{"input_file_id", file.json().at("id")}, {"endpoint", "/v1/chat/completions"},
                      {"completion_window", "24h"}};
    auto created = c.request("POST", "/v1/batches", {{"Content-Type", "application/json"}}, json::serialize(body));
    BOOST_TEST_REQUIRE(created.status == 200, created.body);
    const std::string id(created.json().at("id").as_string());
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string status;
    while ((status = std::string(c.get("/v1/batches/" + id).json().at("status").as_string())) != "completed" &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    BOOST_TEST_REQUIRE(status == "completed");

    const auto after = scrape(gw);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_lines_total{outcome="succeeded"})") == 3);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_lines_total{outcome="failed"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_lines_total{outcome="retried"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_lines_total{outcome="cancelled"})") == 0);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_upstream_requests_total{upstream="fake",status="200"})") == 3);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_upstream_requests_total{upstream="fake",status="500"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_upstream_requests_total{upstream="fake",status="400"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_upstream_retries_total{upstream="fake"})") == 1);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_upstream_latency_seconds_count{upstream="fake"})") == 5);
    BOOST_TEST(prom::delta(before, after, R"(aqueduct_batches_upstream_latency_seconds_bucket{upstream="fake",le="+Inf"})") == 5);
    BOOST_TEST(up.total() == 5);
    // Every attempt went out with an x-request-id of its own (issue 10: request ids reach the
    // upstreams of batch requests).
    std::set<std::string> ids;
    for (const char* key : {"ok1", "flaky", "refused", "ok2"})
        for (const std::string& rid : up.request_ids(key)) {
            BOOST_TEST((rid.starts_with("req_") && rid.size() > 10), key << ": " << rid);
            ids.insert(rid);
        }
    BOOST_TEST(ids.size() == 5u);

    // The gauge is refreshed every second: this gateway's database has this one batch.
    prom::samples counts;
    for (int i = 0; i < 100; ++i) {
        counts = scrape(gw);
        if (prom::value(counts, R"(aqueduct_batches{status="completed"})") == 1) break;
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(prom::value(counts, R"(aqueduct_batches{status="completed"})") == 1);
    BOOST_TEST(prom::value(counts, R"(aqueduct_batches{status="in_progress"})") == 0);
    BOOST_TEST(prom::value(counts, R"(aqueduct_batches{status="validating"})") == 0);
}

BOOST_AUTO_TEST_CASE(readyz_follows_the_plugins_database_stopped_and_started_under_the_gateway) {
    aqt::postgres_server pg;
    aqt::fake_upstream up;
    aqt::gateway gw(plugins_config(up, {{"database", pg.url()}, {"readiness_interval_ms", 100}}));
    aqt::http::client c(gw.port());
    // /readyz answers what the last checks said: poll until it says `status`.
    auto readyz_until = [&](int status) {
        aqt::http::response r;
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        do {
            r = c.get("/readyz");
            if (r.status == status) break;
            std::this_thread::sleep_for(50ms);
        } while (std::chrono::steady_clock::now() < deadline);
        return r;
    };
    auto r = readyz_until(200);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"status":"ready"})");

    pg.stop();
    r = readyz_until(503);
    BOOST_TEST(r.status == 503);
    BOOST_TEST(r.body == R"({"status":"unavailable","not_ready":["files","batches"]})");
    BOOST_TEST(c.get("/healthz").status == 200);  // alive: only not ready
    BOOST_TEST(gw.wait_for_log("plugin files is not ready: /readyz answers 503"));

    pg.start();
    r = readyz_until(200);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"status":"ready"})");
    BOOST_TEST(gw.wait_for_log("plugin files is ready again"));
    // And the API works again without a restart.
    c.default_headers["Authorization"] = gw.bearer("alice");
    BOOST_TEST(c.get("/v1/files").status == 200);
}
