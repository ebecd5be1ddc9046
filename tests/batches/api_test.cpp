// The Batch API through the real aqueductd with the files and batches plugins and the fake
// upstream: create validation, lifecycle with exact output bytes, list paging, the active-batch
// limit, cancel, expiry, a deleted input file, kill -9 and restart, and (PostgreSQL) two hosts
// on one database. Runs on SQLite; `batches_api_postgres_test` runs the same cases with
// `-- --postgres` on the throwaway PostgreSQL of the "postgres" fixture.
#define BOOST_TEST_MODULE batches_api
#include <boost/test/unit_test.hpp>

#include "batch_client.hpp"
#include "batch_input.hpp"
#include "fake_upstream.hpp"
#include "rule_cases.hpp"
#include "support/database_unavailable.hpp"
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/postgres.hpp"
#include "support/wait_until.hpp"
#include "webhook_receiver.hpp"

#include "schema.hpp"
#include "webhook_signature.hpp"
#include "sql/migrations.hpp"
#include "sql/pool.hpp"

#include <boost/json.hpp>
#include <soci/soci.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

using aqt::line;
using aqt::split_lines;
using aqt::use_postgres;



std::string lines(const std::string& prefix, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += line(prefix + std::to_string(i));
    return s;
}


// One gateway (or several on one database) with the files and batches plugins.
struct env {
    aqt::fake_upstream up;
    std::string database;  // empty: each gateway's own SQLite file

    // A lease of 4 s and an upstream timeout of 20 s: short enough for the takeover tests, and
    // long enough that a loaded machine's stall of a second or two neither lapses a live host's
    // lease nor times out a line, either of which would send a line twice.
    json::object config(json::object batches = {}, json::object upstream_overrides = {}) {
        json::object upstream{{"name", "fake"}, {"base_url", up.base_url()}, {"models", json::array{"m1", "m2"}},
                              {"max_concurrency", 64}, {"timeout_seconds", 20}};
        for (auto& [k, v] : upstream_overrides) upstream[k] = v;
        json::object b{{"enabled", true},
                       {"requires", json::array{"files"}},
                       {"upstreams", json::array{upstream}},
                       {"poll_interval_ms", 50},
                       {"lease_seconds", 4},
                       {"backoff_initial_ms", 10},
                       {"backoff_max_ms", 100}};
        for (auto& [k, v] : batches) b[k] = v;
        json::object c{{"plugins", {{"files", {{"enabled", true}, {"purposes", json::array{"batch", "user_data"}}}},
                                    {"batches", b}}}};
        if (!database.empty()) c["database"] = database;
        return c;
    }

    env() {
        if (use_postgres()) database = aqt::postgres_url();
    }
};

using client = aqt::batch_client;

void expect_error(const aqt::http::response& r, int status, const char* param) {
    BOOST_TEST(r.status == status, r.body);
    BOOST_TEST(r.header("content-type") == "application/json");
    auto e = r.json().at("error").as_object();
    BOOST_TEST(e.size() == 4u);
    BOOST_TEST(e.contains("message"));
    BOOST_TEST(e.contains("type"));
    BOOST_TEST(e.contains("code"));
    if (param) BOOST_TEST(e.at("param") == json::value(param), r.body);
}

const char* const batch_keys[] = {"id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window",
                                  "status", "output_file_id", "error_file_id", "created_at", "in_progress_at",
                                  "expires_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
                                  "cancelling_at", "cancelled_at", "request_counts", "usage", "metadata"};

// custom_ids whose result is recorded, read straight from the database.
std::set<std::string> recorded_ids(const std::string& url) {
    aq::sql::pool pool(url, 1);
    auto s = pool.lease();
    std::set<std::string> out;
    std::string id;
    soci::statement st = (s->prepare << "SELECT custom_id FROM batch_requests WHERE state = 'done'", soci::into(id));
    st.execute();
    while (st.fetch()) out.insert(id);
    return out;
}

void db_exec(const std::string& url, const std::string& sql) {
    aq::sql::pool pool(url, 1);
    *pool.lease() << sql;
}

// The first column of the first row as text ('' when there is none).
std::string db_text(const std::string& url, const std::string& sql) {
    aq::sql::pool pool(url, 1);
    auto s = pool.lease();
    std::string v;
    *s << sql, soci::into(v);
    return s->got_data() ? v : std::string();
}

// The database a gateway of this env uses.
std::string database_of(const env& e, const aqt::gateway& gw) {
    return e.database.empty() ? "sqlite:" + (gw.dir() / "aqueduct.db").string() : e.database;
}

}  // namespace

BOOST_AUTO_TEST_CASE(create_validates_fields_files_and_owner) {
    env e;
    aqt::gateway gw(e.config());
    client alice(gw, "alice"), bob(gw, "bob");
    std::string file = alice.upload(line("a"));
    json::object ok{{"input_file_id", file}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "24h"}};

    auto without = [&](const char* key) {
        json::object b = ok;
        b.erase(key);
        return b;
    };
    expect_error(alice.create(without("input_file_id")), 400, "input_file_id");
    expect_error(alice.create(without("endpoint")), 400, "endpoint");
    expect_error(alice.create(without("completion_window")), 400, "completion_window");
    auto with = [&](const char* key, json::value v) {
        json::object b = ok;
        b[key] = std::move(v);
        return b;
    };
    expect_error(alice.create(with("endpoint", "/v1/images/generations")), 400, "endpoint");
    expect_error(alice.create(with("completion_window", "1h")), 400, "completion_window");
    json::object many;
    for (int i = 0; i < 17; ++i) many["k" + std::to_string(i)] = "v";
    expect_error(alice.create(with("metadata", many)), 400, "metadata");
    expect_error(alice.create(with("metadata", json::object{{std::string(65, 'k'), "v"}})), 400, "metadata");
    expect_error(alice.create(with("metadata", json::object{{"k", std::string(513, 'v')}})), 400, "metadata");
    expect_error(alice.create(with("metadata", json::object{{"k", 1}})), 400, "metadata");
    expect_error(alice.create(with("output_expires_after", json::object{{"anchor", "created_at"}, {"seconds", 60}})),
                 400, "output_expires_after.seconds");
    expect_error(alice.create(with("input_file_id", "file-doesnotexist")), 404, "input_file_id");
    expect_error(bob.create(ok), 404, "input_file_id");  // alice's file does not exist for bob
    std::string user_data = alice.upload("{\"x\":1}\n", "user_data");
    expect_error(alice.create(with("input_file_id", json::value(user_data))), 400, "input_file_id");
    auto bad_json = alice.http.request("POST", "/v1/batches", {{"Content-Type", "application/json"}}, "{nope");
    expect_error(bad_json, 400, nullptr);

    // A valid create answers the full Batch object.
    json::object meta{{"k", std::string(512, 'v')}};
    auto r = alice.create(with("metadata", meta));
    BOOST_REQUIRE_EQUAL(r.status, 200);
    BOOST_TEST(r.header("content-type") == "application/json");
    BOOST_TEST(!r.header("x-request-id").empty());
    auto b = r.json().as_object();
    for (const char* key : batch_keys) BOOST_TEST(b.contains(key), key);
    BOOST_TEST(b.size() == std::size(batch_keys));
    BOOST_TEST(b.at("object") == "batch");
    BOOST_TEST(b.at("status") == "validating");
    BOOST_TEST(std::string(b.at("id").as_string()).starts_with("batch_"));
    BOOST_TEST(b.at("id").as_string().size() == 30u);
    BOOST_TEST(b.at("expires_at").as_int64() == b.at("created_at").as_int64() + 86400);
    BOOST_TEST(b.at("metadata") == json::value(meta));
    BOOST_TEST(b.at("in_progress_at").is_null());
    BOOST_TEST(b.at("errors").is_null());
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":0,"completed":0,"failed":0})"));
    // Both route prefixes; another owner cannot see it.
    BOOST_TEST(alice.http.get("/batches/" + std::string(b.at("id").as_string())).status == 200);
    expect_error(bob.http.get("/v1/batches/" + std::string(b.at("id").as_string())), 404, nullptr);
    expect_error(alice.http.get("/v1/batches/batch_nope"), 404, nullptr);
}

BOOST_AUTO_TEST_CASE(lifecycle_to_completed_with_exact_output_bytes_in_input_order) {
    env e;
    e.up.set_rule("c5", {"status", 400, -1, -1});
    aqt::gateway gw(e.config());
    client alice(gw, "alice");
    std::string file = alice.upload(lines("c", 30));
    std::string id = alice.create_batch(file, {{"metadata", {{"purpose", "test"}}}});
    auto b = alice.wait(id, {"completed", "failed"});
    BOOST_REQUIRE_MESSAGE(b.at("status") == "completed", json::serialize(b));
    for (const char* key : batch_keys) BOOST_TEST(b.contains(key), key);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":30,"completed":29,"failed":1})"));
    BOOST_TEST(b.at("usage").at("input_tokens").as_int64() == 290);
    BOOST_TEST(b.at("usage").at("output_tokens").as_int64() == 145);
    BOOST_TEST(b.at("usage").at("total_tokens").as_int64() == 435);
    BOOST_TEST(b.at("usage").at("input_tokens_details").at("cached_tokens").as_int64() == 58);
    BOOST_TEST(b.at("model") == "m1");
    for (const char* t : {"in_progress_at", "finalizing_at", "completed_at"}) BOOST_TEST(b.at(t).is_int64(), t);
    for (const char* t : {"failed_at", "expired_at", "cancelling_at", "cancelled_at"}) BOOST_TEST(b.at(t).is_null(), t);

    std::string out = alice.content(b.at("output_file_id"));
    auto out_lines = split_lines(out);
    BOOST_REQUIRE_EQUAL(out_lines.size(), 29u);
    std::string expected;
    std::size_t k = 0;
    for (int i = 0; i < 30; ++i) {
        if (i == 5) continue;
        std::string cid = "c" + std::to_string(i);
        std::string req_id(json::parse(out_lines[k++]).at("id").as_string());
        BOOST_TEST(req_id.starts_with("batch_req_"));
        BOOST_TEST(req_id.size() == 34u);
        expected += "{\"id\":\"" + req_id + "\",\"custom_id\":\"" + cid +
                    "\",\"response\":{\"status_code\":200,\"request_id\":\"req_" + cid + "_1\",\"body\":" +
                    aqt::fake_upstream::success_body(cid, "m1") + "},\"error\":null}\n";
    }
    BOOST_TEST(out == expected);
    auto err = split_lines(alice.content(b.at("error_file_id")));
    BOOST_REQUIRE_EQUAL(err.size(), 1u);
    auto v = json::parse(err[0]);
    BOOST_TEST(v.at("custom_id") == "c5");
    BOOST_TEST(v.at("response").at("status_code") == 400);
    BOOST_TEST(v.at("error").is_null());

    // The result files are ordinary files of the owner, purpose batch_output.
    auto meta = alice.http.get("/v1/files/" + std::string(b.at("output_file_id").as_string()));
    BOOST_TEST(meta.status == 200);
    BOOST_TEST(meta.json().at("purpose") == "batch_output");
    BOOST_TEST(meta.json().at("bytes").as_int64() == static_cast<std::int64_t>(out.size()));
    auto listed = alice.http.get("/v1/files?purpose=batch_output").json();
    BOOST_TEST(listed.at("data").as_array().size() == 2u);
    client bob(gw, "bob");
    BOOST_TEST(bob.http.get("/v1/files/" + std::string(b.at("output_file_id").as_string())).status == 404);
    // A finished batch cannot be cancelled.
    expect_error(alice.cancel(id),
                 400, nullptr);
}

BOOST_AUTO_TEST_CASE(validation_failures_name_code_and_line) {
    env e;
    aqt::gateway gw(e.config());
    client alice(gw, "alice");
    std::string mismatch = alice.upload(line("a") + line("b", "m1", "/v1/embeddings"));
    auto b = alice.wait(alice.create_batch(mismatch), {"failed", "completed"});
    BOOST_TEST(b.at("status") == "failed");
    BOOST_TEST(b.at("failed_at").is_int64());
    auto err = b.at("errors").at("data").at(0);
    BOOST_TEST(b.at("errors").at("object") == "list");
    BOOST_TEST(err.at("code") == "url_mismatch");
    BOOST_TEST(err.at("line") == 2);
    BOOST_TEST(err.at("param") == "url");

    std::string unknown_model = alice.upload(line("a") + line("b") + line("c", "gpt-unknown"));
    b = alice.wait(alice.create_batch(unknown_model), {"failed", "completed"});
    BOOST_TEST(b.at("errors").at("data").at(0).at("code") == "model_not_found");
    BOOST_TEST(b.at("errors").at("data").at(0).at("line") == 3);
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(list_pages_newest_first) {
    env e;
    aqt::gateway gw(e.config());
    client alice(gw, "alice");
    std::string file = alice.upload(line("a"));
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(alice.create_batch(file));
    auto page = alice.http.get("/v1/batches?limit=2").json();
    BOOST_TEST(page.at("object") == "list");
    BOOST_REQUIRE_EQUAL(page.at("data").as_array().size(), 2u);
    BOOST_TEST(page.at("has_more") == true);
    BOOST_TEST(page.at("first_id") == page.at("data").at(0).at("id"));
    BOOST_TEST(page.at("last_id") == page.at("data").at(1).at("id"));
    auto rest = alice.http.get("/v1/batches?limit=2&after=" + std::string(page.at("last_id").as_string())).json();
    BOOST_REQUIRE_EQUAL(rest.at("data").as_array().size(), 1u);
    BOOST_TEST(rest.at("has_more") == false);
    std::set<std::string> seen;
    for (auto& p : {page, rest})
        for (auto& b : p.at("data").as_array()) seen.insert(std::string(b.at("id").as_string()));
    BOOST_TEST(seen == std::set<std::string>(ids.begin(), ids.end()));
    auto all = alice.http.get("/batches").json();
    BOOST_TEST(all.at("data").as_array().size() == 3u);
    BOOST_TEST(all.at("data").at(0).at("created_at").as_int64() >= all.at("data").at(2).at("created_at").as_int64());
    expect_error(alice.http.get("/v1/batches?limit=0"), 400, "limit");
    expect_error(alice.http.get("/v1/batches?limit=101"), 400, "limit");
    client bob(gw, "bob");
    auto none = bob.http.get("/v1/batches").json();
    BOOST_TEST(none.at("data").as_array().empty());
    BOOST_TEST(none.at("first_id").is_null());
    BOOST_TEST(none.at("has_more") == false);
}

BOOST_AUTO_TEST_CASE(active_batch_limit_answers_429_with_retry_after) {
    env e;
    e.up.set_held(true);  // alice's two batches stay active, however slowly this test runs
    aqt::gateway gw(e.config({{"max_active_batches_per_owner", 2}}));
    client alice(gw, "alice");
    std::string file = alice.upload(lines("x", 4));
    alice.create_batch(file);
    alice.create_batch(file);
    auto r = alice.create(json::object{{"input_file_id", file}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "24h"}});
    expect_error(r, 429, nullptr);
    BOOST_TEST(!r.header("retry-after").empty());
    client bob(gw, "bob");
    BOOST_TEST(bob.create(json::object{{"input_file_id", bob.upload(line("b"))}, {"endpoint", "/v1/chat/completions"},
                                       {"completion_window", "24h"}}).status == 200);
    e.up.set_held(false);
}

BOOST_AUTO_TEST_CASE(cancel_moves_to_cancelled_with_partial_results) {
    env e;
    e.up.set_latency(500ms);  // 40 lines, 2 at a time: 10 s, long after the cancel
    aqt::gateway gw(e.config({{"max_in_flight", 2}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 40)));
    while (e.up.total() < 3) std::this_thread::sleep_for(10ms);
    auto r = alice.cancel(id);
    BOOST_REQUIRE_EQUAL(r.status, 200);
    BOOST_TEST(r.json().at("status") == "cancelling");
    BOOST_TEST(r.json().at("cancelling_at").is_int64());
    // Cancelling again answers the batch unchanged.
    auto again = alice.http.request("POST", "/batches/" + id + "/cancel");
    BOOST_TEST(again.status == 200);
    auto b = alice.wait(id, {"cancelled"});
    long long sent = e.up.total();
    BOOST_TEST(sent < 40);
    BOOST_TEST(b.at("cancelled_at").is_int64());
    BOOST_TEST(b.at("request_counts").at("completed").as_int64() == sent);
    std::set<std::string> seen;
    for (auto& l : split_lines(alice.content(b.at("output_file_id"))))
        BOOST_TEST(seen.insert(std::string(json::parse(l).at("custom_id").as_string())).second);
    for (auto& l : split_lines(alice.content(b.at("error_file_id")))) {
        auto v = json::parse(l);
        BOOST_TEST(v.at("error").at("code") == "batch_cancelled");
        BOOST_TEST(v.at("response").is_null());
        BOOST_TEST(seen.insert(std::string(v.at("custom_id").as_string())).second);
    }
    BOOST_TEST(seen.size() == 40u);
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(e.up.total() == sent);  // nothing was sent after the cancel took effect
    expect_error(alice.http.request("POST", "/v1/batches/" + id + "/cancel"), 400, nullptr);
    expect_error(alice.http.request("POST", "/v1/batches/batch_nope/cancel"), 404, nullptr);
}

BOOST_AUTO_TEST_CASE(expiry_writes_batch_expired_lines) {
    env e;
    e.up.set_latency(300ms);
    aqt::gateway gw(e.config({{"max_in_flight", 1}, {"completion_window_seconds", 1}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 10)));
    auto b = alice.wait(id, {"expired", "completed"});
    BOOST_TEST(b.at("status") == "expired");
    BOOST_TEST(b.at("expired_at").is_int64());
    auto err = split_lines(alice.content(b.at("error_file_id")));
    BOOST_TEST(!err.empty());
    for (auto& l : err) BOOST_TEST(json::parse(l).at("error").at("code") == "batch_expired");
    BOOST_TEST(split_lines(alice.content(b.at("output_file_id"))).size() + err.size() == 10u);
}

BOOST_AUTO_TEST_CASE(input_file_deleted_before_validation_fails_the_batch) {
    env e;
    aqt::gateway gw(e.config({{"poll_interval_ms", 1500}}));
    client alice(gw, "alice");
    std::string file = alice.upload(line("a"));
    std::string id = alice.create_batch(file);
    BOOST_REQUIRE_EQUAL(alice.http.request("DELETE", "/v1/files/" + file).status, 200);
    auto b = alice.wait(id, {"failed", "completed"});
    BOOST_TEST(b.at("status") == "failed");
    BOOST_TEST(b.at("errors").at("data").at(0).at("code") == "file_not_found");
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(kill9_mid_batch_then_restart_sends_no_recorded_line_again) {
    env e;
    e.up.set_latency(20ms);
    e.up.set_rule("k7", {"status", 500, 2, -1});  // needs retries across the crash too
    aqt::gateway gw(e.config({{"max_in_flight", 8}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 300)));
    while (alice.get(id).at("request_counts").at("completed").as_int64() < 60) std::this_thread::sleep_for(20ms);
    gw.kill9();
    auto recorded = recorded_ids(database_of(e, gw));
    auto counts_at_kill = e.up.counts();
    BOOST_TEST(recorded.size() >= 60u);
    gw.restart();
    client again(gw, "alice");
    auto b = again.wait(id, {"completed"}, 90s);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":300,"completed":300,"failed":0})"));
    auto counts = e.up.counts();
    for (const auto& cid : recorded) BOOST_TEST(counts[cid] == counts_at_kill[cid], cid);  // never sent again
    int resent = 0;
    for (auto& [cid, n] : counts) {
        if (cid == "k7") continue;
        BOOST_TEST(n <= 2, cid);
        resent += n - 1;
    }
    BOOST_TEST(resent <= 8);  // only lines in flight at the kill
    std::multiset<std::string> seen;
    for (auto& l : split_lines(again.content(b.at("output_file_id"))))
        seen.insert(std::string(json::parse(l).at("custom_id").as_string()));
    BOOST_TEST(seen.size() == 300u);
    BOOST_TEST(std::set<std::string>(seen.begin(), seen.end()).size() == 300u);
    BOOST_TEST(b.at("error_file_id").is_null());
}

BOOST_AUTO_TEST_CASE(two_hosts_on_one_postgres_share_the_work_and_take_over_a_dead_one,
                     *boost::unit_test::label("postgres_only")) {
    // needs a database both hosts reach: the PostgreSQL run of this suite only (tests/batches/CMakeLists.txt)
    BOOST_TEST_REQUIRE(use_postgres());
    env e;
    // Held at first: every line stays in flight, so both hosts fill their 8 places however slowly
    // either of them starts (counted after 100 lines had finished, a sanitizer build once saw one
    // host alone).
    e.up.set_held(true);
    aqt::gateway one(e.config({{"max_in_flight", 8}}));
    aqt::gateway two(e.config({{"max_in_flight", 8}}));
    client alice(one, "alice");
    // Tokens differ per gateway but owners are names: alice on two sees alice's batches.
    client alice2(two, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 400)));
    BOOST_TEST(alice2.get(id).at("id").as_string() == id);
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return e.up.active() == 16; }, 30s), "in flight: " << e.up.active());
    e.up.set_latency(20ms);
    e.up.set_held(false);
    while (alice.get(id).at("request_counts").at("completed").as_int64() < 100) std::this_thread::sleep_for(20ms);
    // While both run, no line is sent twice.
    for (auto& [cid, n] : e.up.counts()) BOOST_TEST(n == 1, cid);
    BOOST_TEST(e.up.max_active() == 16);  // 8 from each host, never more
    one.kill9();
    auto b = alice2.wait(id, {"completed"}, 90s);
    BOOST_TEST(b.at("request_counts").at("completed").as_int64() == 400);
    int resent = 0;
    for (auto& [cid, n] : e.up.counts()) resent += n - 1;
    BOOST_TEST(resent <= 8);  // only what the dead host had in flight
    std::set<std::string> seen;
    for (auto& l : split_lines(alice2.content(b.at("output_file_id"))))
        BOOST_TEST(seen.insert(std::string(json::parse(l).at("custom_id").as_string())).second);
    BOOST_TEST(seen.size() == 400u);
}

BOOST_AUTO_TEST_CASE(init_fails_naming_an_unknown_or_invalid_key) {
    env e;
    auto c = e.config({{"max_inflight", 3}});
    auto f = aqt::expect_startup_failure(c);
    BOOST_TEST(!f.status.success());
    BOOST_TEST(f.log.find("plugins.batches.max_inflight") != std::string::npos, f.log);
    auto d = e.config({{"upstreams", json::array{{{"name", "x"}, {"base_url", "ftp://h/v1"}, {"models", json::array{"*"}}}}}});
    f = aqt::expect_startup_failure(d);
    BOOST_TEST(f.log.find("plugins.batches.upstreams[0].base_url") != std::string::npos, f.log);
}

BOOST_AUTO_TEST_CASE(sigterm_mid_batch_stops_promptly_and_restart_finishes) {
    env e;
    e.up.set_latency(50ms);
    e.up.set_rule("k3", {"hang", 0, -1, -1});  // a hanging upstream must not hold up shutdown
    aqt::gateway gw(e.config({{"max_in_flight", 4}, {"max_attempts", 1}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 100)));
    while (alice.get(id).at("request_counts").at("completed").as_int64() < 10) std::this_thread::sleep_for(20ms);
    auto t0 = std::chrono::steady_clock::now();
    auto status = gw.stop();
    BOOST_TEST(status.success(), status.describe());
    // Well below the 20 s upstream timeout that a shutdown waiting for k3 would take.
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));
    e.up.clear_rules();
    gw.restart();
    client again(gw, "alice");
    auto b = again.wait(id, {"completed"}, 60s);
    BOOST_TEST(b.at("request_counts").at("completed").as_int64() + b.at("request_counts").at("failed").as_int64() == 100);
}

BOOST_AUTO_TEST_CASE(input_over_max_input_bytes_is_refused_at_create) {
    env e;
    aqt::gateway gw(e.config({{"max_input_bytes", 200}}));
    client alice(gw, "alice");
    std::string file = alice.upload(lines("k", 3));
    expect_error(alice.create(json::object{{"input_file_id", file}, {"endpoint", "/v1/chat/completions"},
                                           {"completion_window", "24h"}}),
                 400, "input_file_id");
}

BOOST_AUTO_TEST_CASE(api_key_from_the_environment_is_sent_upstream) {
    env e;
    e.up.require_api_key("sk-test-123");
    aqt::gateway_options o;
    o.config = e.config();
    auto& ups = o.config["plugins"].as_object()["batches"].as_object()["upstreams"].as_array();
    ups[0].as_object()["api_key"] = "${AQT_FAKE_KEY}";
    o.env["AQT_FAKE_KEY"] = "sk-test-123";
    aqt::gateway gw(o);
    client alice(gw, "alice");
    auto b = alice.wait(alice.create_batch(alice.upload(line("a"))), {"completed"});
    BOOST_TEST(b.at("request_counts").at("completed") == 1);

    // A wrong key is a 401 from the upstream: final at once, kept as the error line's response.
    e.up.require_api_key("sk-other");
    auto f = alice.wait(alice.create_batch(alice.upload(line("b"))), {"completed"});
    BOOST_TEST(f.at("request_counts").at("failed") == 1);
    auto err = json::parse(alice.content(f.at("error_file_id")));
    BOOST_TEST(err.at("response").at("status_code") == 401);
}

BOOST_AUTO_TEST_CASE(a_long_upload_holding_the_sqlite_write_lock_delays_but_never_loses_results,
                     *boost::unit_test::label("sqlite_only")) {
    // PostgreSQL has no database-wide write lock: the SQLite run of this suite only (tests/batches/CMakeLists.txt)
    BOOST_TEST_REQUIRE(!use_postgres());
    env e;
    e.up.set_latency(20ms);
    aqt::gateway gw(e.config({{"max_in_flight", 4}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 200)));
    while (alice.get(id).at("request_counts").at("completed").as_int64() < 10) std::this_thread::sleep_for(10ms);
    // An upload streamed slowly for ~13 s keeps the files plugin's write transaction open
    // longer than the 10 s busy timeout of the shared SQLite file.
    std::thread slow([&] {
        aqt::http::client c(gw.port(), 60s);
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", "slow.jsonl", std::string(3584 * 1024, 'x'));
        std::string body = form.body();
        std::size_t pos = 0;
        aqt::http::request req;
        req.method = "POST";
        req.target = "/v1/files";
        req.headers = {{"Authorization", gw.bearer("alice")}, {"Content-Type", form.content_type()}};
        req.content_length = body.size();
        req.body_source = [&](char* buf, std::size_t cap) -> std::size_t {
            if (pos >= body.size()) return 0;
            // The first 1.5 MiB at once (the store writes 1 MiB chunks), the rest over ~12 s.
            bool trickle = pos >= 1536 * 1024;
            if (trickle) std::this_thread::sleep_for(100ms);
            std::size_t n = std::min<std::size_t>({cap, body.size() - pos, trickle ? std::size_t{16 * 1024} : std::size_t{64 * 1024}});
            std::memcpy(buf, body.data() + pos, n);
            pos += n;
            return n;
        };
        auto r = c.send(req);
        BOOST_TEST(r.status == 200, r.body);
    });
    auto b = alice.wait(id, {"completed"}, 90s);
    slow.join();
    std::istringstream log(gw.log());
    for (std::string l; std::getline(log, l);)
        if (l.find("[batches]") != std::string::npos && l.find("WARN") != std::string::npos) BOOST_TEST_MESSAGE(l);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":200,"completed":200,"failed":0})"));
    std::set<std::string> seen;
    for (auto& l : split_lines(alice.content(b.at("output_file_id"))))
        BOOST_TEST(seen.insert(std::string(json::parse(l).at("custom_id").as_string())).second);
    BOOST_TEST(seen.size() == 200u);
    int resent = 0;
    for (auto& [cid, n] : e.up.counts()) resent += n - 1;
    BOOST_TEST(resent == 0);
}

BOOST_AUTO_TEST_CASE(cancel_while_64_lines_run_sends_none_of_the_other_16) {
    // 80 lines of 5 s each on an upstream with max_concurrency 64: all 80 are claimed, 64 run and
    // 16 wait in the upstream client for a connection. A cancel now must keep those 16 from ever
    // reaching the upstream; they become batch_cancelled error lines. (5 s: the 64 connections
    // and the cancel must all happen before the first line ends, also on a loaded machine.)
    env e;
    e.up.set_latency(5000ms);
    aqt::gateway gw(e.config({}, {{"max_concurrency", 64}, {"timeout_seconds", 30}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 80)));
    while (e.up.active() < 64) std::this_thread::sleep_for(5ms);
    auto r = alice.cancel(id);
    BOOST_REQUIRE_EQUAL(r.status, 200);
    BOOST_TEST(r.json().at("status") == "cancelling");
    auto b = alice.wait(id, {"cancelled"}, 60s);
    BOOST_TEST(e.up.total() == 64);
    BOOST_TEST(e.up.max_active() == 64);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":80,"completed":64,"failed":16})"));
    auto out = split_lines(alice.content(b.at("output_file_id")));
    BOOST_TEST(out.size() == 64u);
    std::set<std::string> sent;
    for (auto& l : out) sent.insert(std::string(json::parse(l).at("custom_id").as_string()));
    for (auto& [cid, n] : e.up.counts()) {
        BOOST_TEST(n == 1, cid);
        BOOST_TEST(sent.count(cid) == 1u, cid);
    }
    auto err = split_lines(alice.content(b.at("error_file_id")));
    BOOST_REQUIRE_EQUAL(err.size(), 16u);
    std::set<std::string> cancelled;
    for (auto& l : err) {
        auto v = json::parse(l);
        BOOST_TEST(v.at("response").is_null());
        BOOST_TEST(v.at("error").at("code") == "batch_cancelled");
        BOOST_TEST(v.at("error").at("message") == "The batch was cancelled before this request ran.");
        std::string cid(v.at("custom_id").as_string());
        BOOST_TEST(e.up.count(cid) == 0, cid);
        BOOST_TEST(sent.count(cid) == 0u, cid);
        cancelled.insert(cid);
    }
    BOOST_TEST(cancelled.size() + sent.size() == 80u);
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(e.up.total() == 64);  // and none later
}

BOOST_AUTO_TEST_CASE(a_cancel_through_another_host_stops_lines_waiting_on_this_one,
                     *boost::unit_test::label("postgres_only")) {
    // two hosts need one database: the PostgreSQL run of this suite only (tests/batches/CMakeLists.txt)
    BOOST_TEST_REQUIRE(use_postgres());
    // Host one claims all 40 lines (20 run for 10 s, 20 wait); the cancel goes through host two.
    // Host one learns it from the database (its heartbeat reads the cancelling batches every
    // poll_interval_ms) before the first 20 finish. The 10 s cover starting host two, which
    // took seconds on a loaded machine under the sanitizers.
    env e;
    e.up.set_latency(10000ms);
    auto cfg = e.config({}, {{"max_concurrency", 20}, {"timeout_seconds", 30}});
    aqt::gateway one(cfg);
    client alice(one, "alice");
    std::string id = alice.create_batch(alice.upload(lines("k", 40)));
    while (e.up.active() < 20) std::this_thread::sleep_for(5ms);
    aqt::gateway two(cfg);
    client alice2(two, "alice");
    auto r = alice2.cancel(id);
    BOOST_REQUIRE_EQUAL(r.status, 200);
    BOOST_REQUIRE_MESSAGE(e.up.total() == 20, "the first lines finished before the cancel: the test proves nothing");
    auto b = alice.wait(id, {"cancelled"}, 60s);
    BOOST_TEST(e.up.total() == 20);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":40,"completed":20,"failed":20})"));
    auto err = split_lines(alice.content(b.at("error_file_id")));
    BOOST_TEST(err.size() == 20u);
    for (auto& l : err) BOOST_TEST(json::parse(l).at("error").at("code") == "batch_cancelled");
}

BOOST_AUTO_TEST_CASE(a_429_with_a_huge_or_broken_retry_after_does_not_park_the_batch) {
    // Each key gets one 429 whose retry-after is absurd (10^9 s, a date in the year 9999) or
    // not a delay at all. Capped at max_retry_after_seconds (1 s here, 60 s by default) or
    // ignored, so the batch completes.
    env e;
    e.up.set_rule("huge", {"status", 429, 1, -1, "1000000000"});
    e.up.set_rule("float", {"status", 429, 1, -1, "1e30"});
    e.up.set_rule("date", {"status", 429, 1, -1, "Fri, 31 Dec 9999 23:59:59 GMT"});
    e.up.set_rule("inf", {"status", 429, 1, -1, "inf"});
    e.up.set_rule("negative", {"status", 429, 1, -1, "-5"});
    aqt::gateway gw(e.config({{"max_retry_after_seconds", 1}}));
    client alice(gw, "alice");
    std::string input = line("huge") + line("float") + line("date") + line("inf") + line("negative");
    auto b = alice.wait(alice.create_batch(alice.upload(input)), {"completed"}, 60s);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":5,"completed":5,"failed":0})"));
    for (const char* k : {"huge", "float", "date", "inf", "negative"}) BOOST_TEST(e.up.count(k) == 2, k);
}

BOOST_AUTO_TEST_CASE(a_200_mib_input_validates_while_uploads_cancels_and_results_go_on) {
    // Validation stages lines in short transactions: on SQLite no write transaction spans the
    // reading and parsing of the input, so other writers do not wait for it (before, they
    // waited behind one transaction for the whole file, up to the busy timeout, then got 500).
    // Shown by work that *completes* while the big batch is still validating.
    env e;
    e.up.set_latency(20ms);
    aqt::gateway gw(e.config({{"max_in_flight", 8}}));
    client alice(gw, "alice"), bob(gw, "bob");
    // 50,000 lines of 4,190 bytes: 199.8 MiB, just under the 200 MiB max_input_bytes.
    std::string big;
    big.reserve(210u << 20);
    for (int i = 0; i < 50000; ++i) {
        std::string id = "big" + std::to_string(i);
        std::string head = R"({"custom_id":")" + id + R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","user":")" +
                           id + R"(","messages":[{"role":"user","content":")";
        std::string tail = R"("}]}})" "\n";
        big += head + std::string(4190 - head.size() - tail.size(), 'x') + tail;
    }
    BOOST_TEST_MESSAGE("input: " << big.size() / (1 << 20) << " MiB");
    BOOST_REQUIRE(big.size() > (199u << 20) && big.size() <= (200u << 20));
    std::string big_file = alice.upload(big);
    big.clear();
    big.shrink_to_fit();
    // A batch whose results are recorded all the time (bob's, so it does not wait behind big):
    // 20,000 lines at 8 x 20 ms (50 s) last longer than the validation.
    std::string running = bob.create_batch(bob.upload(lines("r", 20000)));
    bob.wait(running, {"in_progress"});
    std::string big_id = alice.create_batch(big_file);

    std::atomic<bool> validating{true};
    std::atomic<int> uploads_during{0}, cancels_during{0}, failures{0};
    std::vector<std::string> failure_text;
    std::mutex failure_mu;
    auto failed = [&](const std::string& what, const aqt::http::response& r) {
        std::lock_guard lock(failure_mu);
        ++failures;
        failure_text.push_back(what + ": " + std::to_string(r.status) + " " + r.body.substr(0, 300));
    };
    // As the OpenAI SDKs do: a 503 database_unavailable is retried after its retry-after, twice at
    // most. Seen rarely on a machine loaded by other suites (SQLite's busy timeout running out);
    // what this test pins is that no answer is a 500 and that the work goes on.
    std::atomic<int> retried{0};
    auto as_sdk = [&](auto send) {
        aqt::http::response r = send();
        for (int attempt = 0; attempt < 2 && r.status == 503 && aqt::not_database_unavailable(r).empty(); ++attempt) {
            ++retried;
            std::this_thread::sleep_for(std::chrono::seconds(std::stoi(r.header("retry-after"))));
            r = send();
        }
        return r;
    };
    std::thread uploader([&] {
        client c(gw, "carol");
        while (validating) {
            std::this_thread::sleep_for(10ms);
            aqt::multipart form;
            form.field("purpose", "batch").file("file", "small.jsonl", line("s"));
            auto r = as_sdk(
                [&] { return c.http.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body()); });
            if (r.status != 200) failed("upload", r);
            else if (validating) ++uploads_during;
        }
    });
    std::thread canceller([&] {
        client c(gw, "carol");
        std::string file = c.upload(line("c"));
        std::string last;
        for (int n = 0; validating; ++n) {
            std::this_thread::sleep_for(50ms);
            // Cancelled batches stay `cancelling` (active) until the housekeeper, busy validating,
            // finalizes them: after 80, cancel the last one again (an UPDATE all the same).
            if (n < 80) {
                auto created = as_sdk([&] {
                    return c.create(json::object{
                        {"input_file_id", file}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "24h"}});
                });
                if (created.status != 200) {
                    failed("create", created);
                    continue;
                }
                last = std::string(created.json().at("id").as_string());
            }
            auto r = as_sdk([&] { return c.cancel(last); });
            if (r.status == 200) {
                if (validating) ++cancels_during;
            } else if (!(r.status == 400 && validating == false)) {  // finalized once validation ended
                failed("cancel", r);
            }
        }
    });
    struct sample {
        double t;
        long long completed;
        int uploads, cancels;
    };
    std::vector<sample> samples;
    auto t0 = std::chrono::steady_clock::now();
    auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    for (;;) {
        auto b = alice.get(big_id);
        if (b.at("status") != "validating") {
            BOOST_TEST(b.at("status") == "in_progress", json::serialize(b.at("errors")));
            break;
        }
        samples.push_back({since(), bob.get(running).at("request_counts").at("completed").as_int64(),
                           uploads_during.load(), cancels_during.load()});
        BOOST_REQUIRE(since() < 300);
        std::this_thread::sleep_for(50ms);
    }
    validating = false;
    double seconds = since();
    uploader.join();
    canceller.join();
    BOOST_TEST_MESSAGE("validation took " << seconds << " s; meanwhile " << uploads_during << " uploads, "
                                          << cancels_during << " cancels, "
                                          << samples.back().completed - samples.front().completed
                                          << " results recorded; " << retried << " answers retried after 503");
    BOOST_TEST(failures == 0);
    for (auto& f : failure_text) BOOST_TEST_MESSAGE(f);
    // Progress in the second half of the validation, when a single transaction spanning the
    // whole file would have held every other writer back: each kind of work completed then.
    auto mid = std::find_if(samples.begin(), samples.end(), [&](const sample& x) { return x.t >= seconds / 2; });
    BOOST_REQUIRE(mid != samples.end() && mid != samples.end() - 1);
    const sample &from = *mid, &to = samples.back();
    BOOST_TEST(to.uploads > from.uploads);
    BOOST_TEST(to.cancels > from.cancels);
    BOOST_TEST(to.completed > from.completed);
    auto big_batch = alice.get(big_id);
    BOOST_TEST(big_batch.at("request_counts").at("total") == 50000);
    // Stop the 50,000 lines instead of waiting for them (as an SDK would, retrying a 503).
    auto stopped = as_sdk([&] { return alice.http.request("POST", "/v1/batches/" + big_id + "/cancel"); });
    BOOST_TEST(stopped.status == 200, stopped.body);
}

BOOST_AUTO_TEST_CASE(ended_batches_are_purged_after_batch_retention_seconds) {
    env e;
    aqt::gateway gw(e.config({{"batch_retention_seconds", 2}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(line("a")));
    auto b = alice.wait(id, {"completed"});
    std::string output(b.at("output_file_id").as_string());
    auto deadline = std::chrono::steady_clock::now() + 30s;
    aqt::http::response r;
    do {
        std::this_thread::sleep_for(200ms);
        r = alice.http.get("/v1/batches/" + id);
    } while (r.status == 200 && std::chrono::steady_clock::now() < deadline);
    expect_error(r, 404, nullptr);
    BOOST_TEST(alice.http.get("/v1/batches").json().at("data").as_array().empty());
    // The output file lives on, on its own expiry.
    BOOST_TEST(alice.http.get("/v1/files/" + output + "/content").status == 200);
}

BOOST_AUTO_TEST_CASE(a_user_and_a_team_with_the_same_name_are_isolated_on_every_batches_route) {
    env e;
    aqt::gateway gw(e.config());
    client team(gw, "carol");           // team "research"
    client user(gw, "research-user");   // user "research"
    std::string team_file = team.upload(line("t")), user_file = user.upload(line("u1") + line("u2"));
    std::string tid = team.create_batch(team_file), uid = user.create_batch(user_file);
    auto tb = team.wait(tid, {"completed"}), ub = user.wait(uid, {"completed"});
    std::string t_out(tb.at("output_file_id").as_string()), u_out(ub.at("output_file_id").as_string());
    for (auto [who, self, mine, theirs, theirs_file, theirs_out, n] :
         {std::tuple{"team research", &team, tid, uid, user_file, u_out, 1},
          std::tuple{"user research", &user, uid, tid, team_file, t_out, 2}}) {
        BOOST_TEST_CONTEXT("as " << who) {
            expect_error(self->http.get("/v1/batches/" + theirs), 404, "batch_id");
            expect_error(self->http.request("POST", "/v1/batches/" + theirs + "/cancel"), 404, "batch_id");
            expect_error(self->create(json::object{{"input_file_id", theirs_file}, {"endpoint", "/v1/chat/completions"},
                                                   {"completion_window", "24h"}}),
                         404, "input_file_id");
            auto list = self->http.get("/v1/batches").json();
            BOOST_REQUIRE_EQUAL(list.at("data").as_array().size(), 1u);
            BOOST_TEST(list.at("data").at(0).at("id") == json::value(mine));
            BOOST_TEST(self->http.get("/v1/batches?after=" + theirs).json().at("data").as_array().empty());
            expect_error(self->http.get("/v1/files/" + theirs_out + "/content"), 404, nullptr);
            auto own = self->get(mine);
            BOOST_TEST(own.at("request_counts").at("completed") == n);
            BOOST_TEST(split_lines(self->content(own.at("output_file_id"))).size() == static_cast<std::size_t>(n));
        }
    }
    std::string url = database_of(e, gw);
    BOOST_TEST(db_text(url, "SELECT owner FROM batches WHERE id = '" + tid + "'") == "team:research");
    BOOST_TEST(db_text(url, "SELECT owner FROM batches WHERE id = '" + uid + "'") == "user:research");
}

BOOST_AUTO_TEST_CASE(bare_owner_names_of_a_version_1_database_become_owner_keys_once) {
    env e;
    std::filesystem::path dir;
    if (e.database.empty()) {
        dir = std::filesystem::temp_directory_path() / ("aqt-batches-legacy-" + aqt::random_hex(6));
        std::filesystem::create_directories(dir);
        e.database = "sqlite:" + (dir / "legacy.db").string();
    }
    // Schema version 1 as it shipped (the plugin's first migration), with batches owned by bare
    // names.
    {
        aq::sql::pool pool(e.database, 1);
        aq::sql::owner_rewrite unused;
        auto all = batches::schema_migrations({}, unused);
        aq::sql::migrate(*pool.lease(), pool.kind(), "batches", std::span(all).first(1));
    }
    struct legacy_row {
        std::string id, owner, key;
    };
    const std::vector<legacy_row> rows = {
        {"batch_legacyalice0000000000000", "alice", "user:alice"},
        {"batch_legacyteam00000000000000", "research", "team:research"},  // listed as a team
        {"batch_legacybob000000000000000", "bob", "user:bob"},
        {"batch_legacyodd000000000000000", "user:x", "user:user:x"},      // rewritten exactly once
    };
    const long long ended = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count() - 100;
    for (const auto& r : rows)
        db_exec(e.database, "INSERT INTO batches (id, owner, endpoint, input_file_id, completion_window, status,"
                            " created_at, expires_at, completed_at, total, completed) VALUES ('" + r.id + "', '" +
                                r.owner + "', '/v1/chat/completions', 'file-gone', '24h', 'completed', " +
                                std::to_string(ended - 10) + ", " + std::to_string(ended + 86000) + ", " +
                                std::to_string(ended) + ", 1, 1)");
    // A line the old version kept forever.
    db_exec(e.database, "INSERT INTO batch_requests (batch_id, line_no, custom_id, model, body, state) VALUES ('" +
                            rows[0].id + "', 1, 'a', 'm1', '{}', 'done')");

    auto cfg = e.config({{"legacy_team_owners", json::array{"research", "ops"}}});
    aqt::gateway gw(cfg);
    BOOST_TEST(gw.wait_for_log("batches: owners migrated to owner keys: 3 user name(s), 1 team name(s)"), gw.log());
    for (const auto& r : rows)
        BOOST_TEST(db_text(e.database, "SELECT owner FROM batches WHERE id = '" + r.id + "'") == r.key);
    BOOST_TEST(db_text(e.database, "SELECT CAST(ended_at AS TEXT) FROM batches WHERE id = '" + rows[0].id + "'") ==
               std::to_string(ended));
    client alice(gw, "alice"), bob(gw, "bob"), carol(gw, "carol"), research(gw, "research-user");
    BOOST_TEST(alice.get(rows[0].id).at("status") == "completed");
    BOOST_TEST(carol.get(rows[1].id).at("id") == json::value(rows[1].id));
    expect_error(research.http.get("/v1/batches/" + rows[1].id), 404, "batch_id");  // the team's, not the user's
    BOOST_TEST(research.http.get("/v1/batches").json().at("data").as_array().empty());
    BOOST_TEST(bob.get(rows[2].id).at("id") == json::value(rows[2].id));
    expect_error(alice.http.get("/v1/batches/" + rows[2].id), 404, "batch_id");
    // The retention purge drops the old line of the ended batch.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (db_text(e.database, "SELECT custom_id FROM batch_requests") == "a" && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    BOOST_TEST(db_text(e.database, "SELECT custom_id FROM batch_requests").empty());

    // A restart finds the latest schema (6: the shared rate limits) and rewrites nothing again.
    gw.restart();
    for (const auto& r : rows)
        BOOST_TEST(db_text(e.database, "SELECT owner FROM batches WHERE id = '" + r.id + "'") == r.key);
    BOOST_TEST(gw.log().find("owners migrated") == std::string::npos);
    BOOST_TEST(db_text(e.database, "SELECT CAST(version AS TEXT) FROM aq_schema WHERE component = 'batches'") == "6");
    if (!dir.empty()) std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(legacy_team_owners_must_be_names) {
    env e;
    for (const json::value& bad : {json::value("research"), json::value(json::array{""}), json::value(json::array{1})}) {
        auto failure = aqt::expect_startup_failure(e.config({{"legacy_team_owners", bad}}));
        BOOST_TEST(failure.log.find("plugins.batches.legacy_team_owners: must be an array of") != std::string::npos,
                   failure.log);
    }
}

BOOST_AUTO_TEST_CASE(upload_and_batch_creation_answer_the_shared_rule_table_alike) {
    // Over HTTP: each input of tests/batch_line/rule_cases.hpp is uploaded (the files plugin's
    // verdict) and, when the upload accepts it, a batch is created from it (the batches
    // plugin's verdict, which adds the endpoint and model rules). Both with the table's limits.
    namespace rules = aqt::batch_rules;
    env e;
    auto cfg = e.config({{"max_line_bytes", rules::rule_case_limits::max_line_bytes},
                         {"max_requests_per_batch", rules::rule_case_limits::max_requests}},
                        {{"models", json::array{"m", "gpt-4o-mini"}}});
    auto& files = cfg["plugins"].as_object()["files"].as_object();
    files["max_line_bytes"] = rules::rule_case_limits::max_line_bytes;
    files["max_requests_per_file"] = rules::rule_case_limits::max_requests;
    aqt::gateway gw(cfg);
    client alice(gw, "alice");
    int created = 0;
    for (const auto& c : rules::rule_cases()) {
        BOOST_TEST_CONTEXT("case " << c.name) {
            aqt::multipart form;
            form.field("purpose", "batch").file("file", "case.jsonl", c.input);
            auto up = alice.http.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
            if (!c.upload.accepted()) {
                BOOST_TEST(up.status == 400, up.body);
                continue;
            }
            BOOST_REQUIRE_MESSAGE(up.status == 200, up.body);
            ++created;
            auto b = alice.wait(alice.create_batch(std::string(up.json().at("id").as_string())),
                                {"in_progress", "finalizing", "completed", "failed"});
            if (c.batch.accepted()) {
                BOOST_TEST(b.at("status") != "failed", json::serialize(b.at("errors")));
                BOOST_TEST(b.at("request_counts").at("total") == c.requests);
            } else {
                BOOST_TEST(b.at("status") == "failed");
                json::object expected{{"code", c.batch.code},
                                      {"message", c.batch.message},
                                      {"param", c.batch.param.empty() ? json::value(nullptr) : json::value(c.batch.param)},
                                      {"line", c.batch.line ? json::value(c.batch.line) : json::value(nullptr)}};
                BOOST_TEST(b.at("errors").at("data").at(0) == json::value(expected), json::serialize(b.at("errors")));
            }
        }
    }
    BOOST_TEST(created >= 10);
}

// ---- webhooks (tests/conformance/webhooks.test.mjs verifies them with the Node SDK) ----

const std::string webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";

json::object webhook_config(const std::string& url) {
    return {{"webhooks", json::array{{{"url", url}, {"secret", webhook_secret}}}},
            {"webhook_backoff_initial_ms", 200},
            {"webhook_backoff_max_ms", 400}};
}

// The delivery is one batch.<type> event for `batch_id`, signed with webhook_secret.
void expect_event(const aqt::webhook_delivery& d, const std::string& type, const std::string& batch_id) {
    BOOST_TEST(d.path == "/hooks");
    BOOST_TEST(d.content_type == "application/json");
    auto key = batches::decode_webhook_secret(webhook_secret);
    BOOST_REQUIRE(key.has_value());
    BOOST_TEST(d.signature == batches::webhook_signature(*key, d.id, std::stoll(d.timestamp), d.body));
    auto event = json::parse(d.body).as_object();
    BOOST_TEST(event.size() == 5u);
    BOOST_TEST(event.at("id") == json::value(d.id));
    BOOST_TEST(event.at("object") == "event");
    BOOST_TEST(event.at("type") == json::value("batch." + type));
    BOOST_TEST(event.at("data") == json::value({{"id", batch_id}}));
}

std::vector<aqt::webhook_delivery> wait_deliveries(const aqt::webhook_receiver& r, std::size_t n,
                                                   std::chrono::seconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (r.deliveries().size() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    std::this_thread::sleep_for(500ms);  // and no more than n
    return r.deliveries();
}

BOOST_AUTO_TEST_CASE(a_webhook_event_survives_kill9_between_the_terminal_status_and_its_delivery) {
    env e;
    unsigned short port = 0;
    std::string url;
    {
        aqt::webhook_receiver gone;  // a port that refuses connections once it is closed
        port = gone.port();
        url = gone.url();
    }
    aqt::gateway gw(e.config(webhook_config(url)));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("w", 3)));
    alice.wait(id, {"completed"});
    // The event is in the outbox; its first attempt found nobody listening.
    BOOST_REQUIRE(gw.wait_for_log("(batch.completed, " + id + ") to " + url + ", attempt 1: ", 20s));
    gw.kill9();
    BOOST_TEST(db_text(database_of(e, gw), "SELECT state FROM batch_webhooks WHERE batch_id = '" + id + "'") ==
               "pending");
    aqt::webhook_receiver back(port);
    gw.restart();
    auto got = wait_deliveries(back, 1);
    BOOST_REQUIRE(got.size() == 1u);
    expect_event(got[0], "completed", id);
    BOOST_TEST(got[0].answered == 200);
    BOOST_REQUIRE(gw.wait_for_log(", delivered", 10s));
    BOOST_TEST(db_text(database_of(e, gw), "SELECT state FROM batch_webhooks WHERE batch_id = '" + id + "'") ==
               "delivered");
}

BOOST_AUTO_TEST_CASE(two_hosts_on_one_postgres_deliver_each_event_exactly_once,
                     *boost::unit_test::label("postgres_only")) {
    // needs a database both hosts reach: the PostgreSQL run of this suite only (tests/batches/CMakeLists.txt)
    BOOST_TEST_REQUIRE(use_postgres());
    env e;
    aqt::webhook_receiver receiver;
    aqt::gateway one(e.config(webhook_config(receiver.url())));
    aqt::gateway two(e.config(webhook_config(receiver.url())));
    client a1(one, "alice"), a2(two, "alice");
    std::set<std::string> ids;
    for (int i = 0; i < 12; ++i) {
        client& c = i % 2 ? a2 : a1;
        ids.insert(c.create_batch(c.upload(lines("x" + std::to_string(i) + "_", 2))));
    }
    for (const auto& id : ids) a1.wait(id, {"completed"});
    auto got = wait_deliveries(receiver, ids.size());
    std::this_thread::sleep_for(1s);  // both hosts poll every 50 ms: time enough for a duplicate
    got = receiver.deliveries();
    BOOST_TEST(got.size() == ids.size());
    std::set<std::string> events, batches_seen;
    for (const auto& d : got) {
        expect_event(d, "completed", std::string(json::parse(d.body).at("data").at("id").as_string()));
        events.insert(d.id);
        batches_seen.insert(std::string(json::parse(d.body).at("data").at("id").as_string()));
    }
    BOOST_TEST(events.size() == ids.size());
    BOOST_TEST(batches_seen == ids);
    // Both hosts delivered some (the outbox is shared, not each host's own).
    BOOST_TEST(one.log_count(", delivered") + two.log_count(", delivered") == ids.size());
}

BOOST_AUTO_TEST_CASE(webhook_config_is_refused_naming_the_key_and_never_quoting_the_secret) {
    env e;
    auto refused = [&](json::value webhooks, const std::string& key, const std::string& message) {
        auto f = aqt::expect_startup_failure(e.config({{"webhooks", webhooks}}));
        BOOST_TEST(!f.status.success());
        BOOST_TEST(f.log.find("plugins.batches." + key + ": " + message) != std::string::npos, f.log);
        return f.log;
    };
    std::string log = refused(json::array{{{"url", "http://h/x"}, {"secret", "whsec_not base64!"}}}, "webhooks[0].secret",
                              "expected \"whsec_\" followed by base64");
    BOOST_TEST(log.find("not base64") == std::string::npos);
    refused(json::array{{{"url", "http://h/x"}, {"secret", "whsec_c2hvcnQ="}}}, "webhooks[0].secret",
            "the key must be at least 16 bytes");
    refused(json::array{{{"url", "http://h/x"}, {"secret", "c2VjcmV0c2VjcmV0c2VjcmV0"}}}, "webhooks[0].secret",
            "expected \"whsec_\" followed by base64");
    refused(json::array{{{"url", "ftp://h/x"}, {"secret", webhook_secret}}}, "webhooks[0].url",
            "required: an http:// or https:// URL");
    refused(json::array{{{"url", "http://u:p@h/x"}, {"secret", webhook_secret}}}, "webhooks[0].url",
            "must name a host (and no user information)");
    refused(json::array{{{"url", "http://h/x"}}}, "webhooks[0].secret", "required");
    refused(json::array{{{"url", "http://h/x"}, {"secret", webhook_secret}, {"events", json::array{"batch.done"}}}},
            "webhooks[0].events", "expected event types");
    refused(json::array{{{"url", "http://h/x"}, {"secret", webhook_secret}, {"owners", json::array{"alice"}}}},
            "webhooks[0].owners", "expected owner keys");
    refused(json::array{{{"url", "http://h/x"}, {"secret", webhook_secret}},
                        {{"url", "http://h/x"}, {"secret", webhook_secret}}},
            "webhooks[1].url", "the same URL is configured twice");
    refused(json::array{{{"url", "http://h/x"}, {"secret", webhook_secret}, {"retries", 3}}}, "webhooks[0].retries",
            "unknown key");
}
