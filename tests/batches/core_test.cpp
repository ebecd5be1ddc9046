// The batches plugin's core (tables, validation, runner, housekeeper, heartbeat, upstream client,
// finalizer, retry-after parsing) driven in-process against SQLite (or, with `-- --postgres`,
// the throwaway PostgreSQL), an in-memory files service and the fake upstream. The HTTP routes
// are covered through the real aqueductd in api_test.cpp.
#define BOOST_TEST_MODULE batches_core
#include <boost/test/unit_test.hpp>

#include "fake_files.hpp"
#include "batch_input.hpp"
#include "fake_upstream.hpp"
#include "rule_cases.hpp"
#include "test_cert.hpp"
#include "support/postgres.hpp"
#include "support/wait_until.hpp"

#include "batch_object.hpp"
#include "batch_table.hpp"
#include "config.hpp"
#include "halted_batches.hpp"
#include "heartbeat.hpp"
#include "housekeeper.hpp"
#include "line_queue.hpp"
#include "retry_after.hpp"
#include "runner.hpp"
#include "schema.hpp"
#include "validation.hpp"
#include "wall_clock.hpp"
#include "webhook_signature.hpp"

#include "sql/pool.hpp"

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

using aqt::line;
using aqt::split_lines;
using aqt::use_postgres;
using batches::now_ms;
using batches::now_s;

struct host_parts;

struct env {
    std::filesystem::path dir;
    aqt::fake_upstream up;
    aqt::fake_files files;
    aqt::fake_host fh;
    batches::config cfg;
    std::unique_ptr<aq::sql::pool> pool;
    std::unique_ptr<batches::batch_table> table;
    std::unique_ptr<batches::line_queue> queue;

    explicit env(json::object overrides = {}) {
        dir = std::filesystem::temp_directory_path() / ("batches_core_" + aq::random_id("", 10));
        std::filesystem::create_directories(dir);
        json::object upstream{{"name", "fake"}, {"base_url", up.base_url()}, {"models", json::array{"*"}},
                              {"max_concurrency", 16}, {"timeout_seconds", 2}};
        if (auto* u = overrides.if_contains("upstream")) {
            for (auto& [k, v] : u->as_object()) upstream[k] = v;
            overrides.erase("upstream");
        }
        json::array upstreams{upstream};
        if (auto* more = overrides.if_contains("more_upstreams")) {  // after `up`, as given
            for (auto& u : more->as_array()) upstreams.push_back(u);
            overrides.erase("more_upstreams");
        }
        std::string database = use_postgres() ? aqt::postgres_url() : "sqlite:" + (dir / "batches.db").string();
        json::object c{{"database", database},
                       {"upstreams", upstreams},
                       {"backoff_initial_ms", 10},
                       {"backoff_max_ms", 100},
                       {"poll_interval_ms", 20},
                       {"lease_seconds", 5}};
        for (auto& [k, v] : overrides) c[k] = v;
        cfg = batches::parse_config(c);
        pool = std::make_unique<aq::sql::pool>(cfg.database, 8);
        batches::migrate_schema(*pool);
        table = std::make_unique<batches::batch_table>(*pool);
        queue = std::make_unique<batches::line_queue>(*pool);
    }
    ~env() {
        queue.reset();
        table.reset();
        pool.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    std::string create(const std::string& owner, const std::string& content,
                       const std::string& endpoint = "/v1/chat/completions") {
        batches::batch_row b;
        b.id = aq::random_id("batch_");
        b.owner = owner;
        b.endpoint = endpoint;
        b.input_file_id = files.add(owner, content);
        b.completion_window = "24h";
        b.status = "validating";
        b.created_at = now_s();
        b.expires_at = b.created_at + cfg.completion_window_seconds;
        table->insert(b);
        return b.id;
    }

    batches::batch_row get(const std::string& owner, const std::string& id) { return *table->get(owner, id); }

    // The batch as the runner and the housekeeper see it.
    batches::batch_work work(const std::string& owner, const std::string& id) {
        auto b = get(owner, id);
        batches::batch_work w;
        w.id = id;
        w.owner = owner;
        w.status = b.status;
        w.endpoint = b.endpoint;
        w.input_file_id = b.input_file_id;
        w.expires_at = b.expires_at;
        return w;
    }

    // Validates a batch at once as host "host_v" (taking its lease), outside any job.
    batches::batch_work validate(const std::string& owner, const std::string& id) {
        auto w = work(owner, id);
        long long t = now_ms();
        BOOST_REQUIRE(table->lease(id, "host_v", t, t + 10000));
        batches::validate_batch(cfg, *table, *queue, files.table(), w, "host_v");
        return work(owner, id);
    }

    // Runs one host's two jobs, one after the other, like the scheduler does, until the batch
    // reaches a terminal status.
    batches::batch_row run(host_parts& h, const std::string& owner, const std::string& id,
                           std::chrono::seconds timeout = 30s);

    // Rows of batch_requests of a batch, read straight from the database.
    long long line_rows(const std::string& batch_id) {
        auto s = pool->lease();
        long long n = 0;
        *s << "SELECT COUNT(*) FROM batch_requests WHERE batch_id = :b", soci::into(n), soci::use(batch_id);
        return n;
    }

    std::string content(const std::string& file_id) {
        auto f = files.get(file_id);
        return f ? f->content : std::string();
    }
};

// One host: its heartbeat (a thread), its runner and its housekeeper (jobs, run by hand here).
struct host_parts {
    batches::halted_batches halted;
    batches::heartbeat beat;
    batches::housekeeper keeper;
    batches::runner runner;

    explicit host_parts(env& e, const std::string& me = aq::random_id("host_", 16))
        : beat(e.fh.host(), e.cfg, me, halted), keeper(e.fh.host(), e.cfg, *e.table, *e.queue, e.files.table(), beat),
          runner(e.fh.host(), e.cfg, *e.table, *e.queue, halted, me) {}

    void once() {
        keeper.run();
        runner.run();
    }
};

batches::batch_row env::run(host_parts& h, const std::string& owner, const std::string& id,
                            std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        h.once();
        auto b = get(owner, id);
        if (batches::is_terminal(b.status)) return b;
        if (std::chrono::steady_clock::now() > deadline) BOOST_FAIL("batch did not finish: " + b.status);
        std::this_thread::sleep_for(std::chrono::milliseconds(cfg.poll_interval_ms));
    }
}

std::string success_line(const std::string& output_line, const std::string& custom_id, int attempt = 1) {
    // The batch_req id is random: take it from the actual line, predict the rest byte for byte.
    json::value v = json::parse(output_line);
    std::string id(v.at("id").as_string());
    return "{\"id\":\"" + id + "\",\"custom_id\":\"" + custom_id + "\",\"response\":{\"status_code\":200,\"request_id\":\"req_" +
           custom_id + "_" + std::to_string(attempt) + "\",\"body\":" + aqt::fake_upstream::success_body(custom_id, "m1") +
           "},\"error\":null}";
}

json::array errors_of(const batches::batch_row& b) { return json::parse(b.errors).as_array(); }

}  // namespace

BOOST_AUTO_TEST_CASE(config_names_the_unknown_key) {
    json::object c{{"database", "sqlite:/tmp/x.db"},
                   {"upstreams", json::array{{{"name", "a"}, {"base_url", "http://h/v1"}, {"models", json::array{"*"}}}}},
                   {"max_atempts", 3}};
    try {
        batches::parse_config(c);
        BOOST_FAIL("accepted an unknown key");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).starts_with("plugins.batches.max_atempts"));
    }
    c.erase("max_atempts");
    c["upstreams"] = json::array{{{"name", "a"}, {"base_url", "http://h/api"}, {"models", json::array{"*"}}}};
    try {
        batches::parse_config(c);
        BOOST_FAIL("accepted a base_url without /v1");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).starts_with("plugins.batches.upstreams[0].base_url"));
    }
}

BOOST_AUTO_TEST_CASE(validation_reports_each_bad_line_with_its_number) {
    env e;
    std::string content = line("a") + "{not json\n" + line("b", "m1", "/v1/embeddings") + line("a") +
                          "{\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":[1]}\n";
    std::string id = e.create("alice", content);
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "failed");
    BOOST_TEST(b.failed_at > 0);
    auto errs = errors_of(b);
    BOOST_REQUIRE_EQUAL(errs.size(), 4u);
    BOOST_TEST(errs[0].at("code").as_string() == "invalid_json_line");
    BOOST_TEST(errs[0].at("line").as_int64() == 2);
    BOOST_TEST(errs[1].at("code").as_string() == "url_mismatch");
    BOOST_TEST(errs[1].at("line").as_int64() == 3);
    BOOST_TEST(errs[2].at("code").as_string() == "duplicate_custom_id");
    BOOST_TEST(errs[2].at("line").as_int64() == 4);
    BOOST_TEST(errs[3].at("code").as_string() == "invalid_request");
    BOOST_TEST(errs[3].at("param").as_string() == "body");
    BOOST_TEST(errs[3].at("line").as_int64() == 5);
    auto obj = batches::batch_object(b);
    BOOST_TEST(obj.at("errors").at("object").as_string() == "list");
    BOOST_TEST(obj.at("request_counts").at("total").as_int64() == 0);
}

BOOST_AUTO_TEST_CASE(validation_fails_empty_file_unknown_model_and_too_many_requests) {
    env e(json::object{{"max_requests_per_batch", 2},
                       {"upstream", json::object{{"models", json::array{"m1", "m2"}}}}});
    host_parts r(e);
    auto empty = e.run(r, "alice", e.create("alice", "\n\n"));
    BOOST_TEST(empty.status == "failed");
    BOOST_TEST(errors_of(empty)[0].at("code").as_string() == "empty_file");

    auto model = e.run(r, "alice", e.create("alice", line("a") + line("b", "gpt-nope")));
    BOOST_TEST(errors_of(model)[0].at("code").as_string() == "model_not_found");
    BOOST_TEST(errors_of(model)[0].at("line").as_int64() == 2);

    auto many = e.run(r, "alice", e.create("alice", line("a") + line("b") + line("c")));
    BOOST_TEST(errors_of(many)[0].at("code").as_string() == "too_many_requests");
    BOOST_TEST(errors_of(many)[0].at("line").as_int64() == 3);
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(input_deleted_after_create_fails_the_batch) {
    env e;
    host_parts r(e);
    std::string id = e.create("alice", line("a"));
    e.files.remove(e.get("alice", id).input_file_id);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "failed");
    BOOST_TEST(errors_of(b)[0].at("code").as_string() == "file_not_found");

    std::string content;
    for (int i = 0; i < 200; ++i) content += line("x" + std::to_string(i));
    id = e.create("alice", content);
    e.files.vanish_after = 5000;  // deleted while being read
    b = e.run(r, "alice", id);
    e.files.vanish_after = -1;
    BOOST_TEST(b.status == "failed");
    BOOST_TEST(errors_of(b)[0].at("code").as_string() == "file_not_found");
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(batch_completes_with_exact_output_and_errors_in_input_order) {
    env e;
    e.up.set_rule("c3", {"status", 400, -1, -1});
    e.up.set_rule("c7", {"status", 404, -1, -1});
    std::string content;
    for (int i = 0; i < 10; ++i) content += line("c" + std::to_string(i));
    std::string id = e.create("alice", content);
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.total == 10);
    BOOST_TEST(b.completed == 8);
    BOOST_TEST(b.failed == 2);
    BOOST_TEST(b.in_progress_at > 0);
    BOOST_TEST(b.finalizing_at > 0);
    BOOST_TEST(b.completed_at > 0);
    BOOST_TEST(b.model == "m1");
    BOOST_TEST(b.usage.input_tokens == 80);
    BOOST_TEST(b.usage.output_tokens == 40);
    BOOST_TEST(b.usage.total_tokens == 120);
    BOOST_TEST(b.usage.cached_tokens == 16);
    BOOST_TEST(b.usage.reasoning_tokens == 8);

    auto out_file = e.files.get(b.output_file_id);
    BOOST_REQUIRE(out_file);
    BOOST_TEST(out_file->purpose == "batch_output");
    BOOST_TEST(out_file->owner == "alice");
    BOOST_TEST(out_file->expires_after == 30 * 86400);
    auto out = split_lines(out_file->content);
    BOOST_REQUIRE_EQUAL(out.size(), 8u);
    std::string expected;
    int k = 0;
    std::set<std::string> ids;
    for (int i = 0; i < 10; ++i) {
        if (i == 3 || i == 7) continue;
        expected += success_line(out[k], "c" + std::to_string(i)) + "\n";
        ids.insert(std::string(json::parse(out[k]).at("id").as_string()));
        ++k;
    }
    BOOST_TEST(out_file->content == expected);
    BOOST_TEST(ids.size() == 8u);
    BOOST_TEST((*ids.begin()).starts_with("batch_req_"));

    auto err = split_lines(e.content(b.error_file_id));
    BOOST_REQUIRE_EQUAL(err.size(), 2u);
    auto e3 = json::parse(err[0]);
    BOOST_TEST(e3.at("custom_id").as_string() == "c3");
    BOOST_TEST(e3.at("response").at("status_code").as_int64() == 400);
    BOOST_TEST(e3.at("response").at("body").at("error").at("message").as_string() == "injected 400 for c3");
    BOOST_TEST(e3.at("error").is_null());
    BOOST_TEST(json::parse(err[1]).at("custom_id").as_string() == "c7");
    // A 4xx other than 429 is final: sent once.
    BOOST_TEST(e.up.count("c3") == 1);
    for (auto& [key, n] : e.up.counts()) BOOST_TEST(n == 1, key);
}

BOOST_AUTO_TEST_CASE(retries_429_honouring_retry_after_then_succeeds) {
    env e;
    e.up.set_rule("slow", {"status", 429, 2, 0.3});
    std::string id = e.create("alice", line("slow") + line("fast"));
    host_parts r(e);
    auto t0 = std::chrono::steady_clock::now();
    auto b = e.run(r, "alice", id);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.completed == 2);
    BOOST_TEST(e.up.count("slow") == 3);
    BOOST_TEST(e.up.count("fast") == 1);
    BOOST_TEST(elapsed >= 0.6);  // two waits of retry-after 0.3 s, not the 10 ms backoff
    auto out = split_lines(e.content(b.output_file_id));
    BOOST_REQUIRE_EQUAL(out.size(), 2u);
    BOOST_TEST(out[0] == success_line(out[0], "slow", 3));
}

BOOST_AUTO_TEST_CASE(exhausted_5xx_becomes_an_error_line_with_the_upstream_response) {
    env e(json::object{{"max_attempts", 3}});
    e.up.set_rule("bad", {"status", 503, -1, -1});
    e.up.set_rule("flaky", {"status", 500, 1, -1});
    std::string id = e.create("alice", line("bad") + line("flaky"));
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.completed == 1);
    BOOST_TEST(b.failed == 1);
    BOOST_TEST(e.up.count("bad") == 3);
    BOOST_TEST(e.up.count("flaky") == 2);
    auto err = split_lines(e.content(b.error_file_id));
    BOOST_REQUIRE_EQUAL(err.size(), 1u);
    auto v = json::parse(err[0]);
    BOOST_TEST(v.at("response").at("status_code").as_int64() == 503);
    BOOST_TEST(v.at("response").at("request_id").as_string() == "req_bad_3");
    BOOST_TEST(v.at("error").is_null());
}

BOOST_AUTO_TEST_CASE(hang_garbage_and_close_become_error_lines_without_response) {
    env e(json::object{{"max_attempts", 2}, {"upstream", json::object{{"timeout_seconds", 1}}}});
    e.up.set_rule("hang", {"hang", 0, -1, -1});
    e.up.set_rule("garbage", {"garbage", 0, -1, -1});
    e.up.set_rule("nothttp", {"garbage_http", 0, -1, -1});
    e.up.set_rule("close", {"close", 0, -1, -1});
    e.up.set_rule("once", {"close", 0, 1, -1});
    std::string id = e.create("alice", line("hang") + line("garbage") + line("nothttp") + line("close") + line("once") + line("ok"));
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.completed == 2);
    BOOST_TEST(b.failed == 4);
    auto err = split_lines(e.content(b.error_file_id));
    BOOST_REQUIRE_EQUAL(err.size(), 4u);
    std::vector<std::pair<std::string, std::string>> expect = {
        {"hang", "timeout"}, {"garbage", "invalid_response"}, {"nothttp", "invalid_response"}, {"close", "connection_error"}};
    for (std::size_t i = 0; i < 4; ++i) {
        auto v = json::parse(err[i]);
        BOOST_TEST(v.at("custom_id").as_string() == expect[i].first);
        BOOST_TEST(v.at("response").is_null());
        BOOST_TEST(v.at("error").at("code").as_string() == expect[i].second, expect[i].first);
        BOOST_TEST(e.up.count(expect[i].first) == 2, expect[i].first);
    }
    BOOST_TEST(e.up.count("once") == 2);
    BOOST_TEST(e.up.count("ok") == 1);
}

BOOST_AUTO_TEST_CASE(claims_never_overlap_and_a_dead_hosts_lease_is_taken_over) {
    env e(json::object{{"lease_seconds", 1}});
    std::string content;
    for (int i = 0; i < 20; ++i) content += line("k" + std::to_string(i));
    std::string id = e.create("alice", content);
    host_parts r(e);
    // Validate only: a run with nothing runnable yet validates and then claims; use the store
    // directly to claim as two other hosts first.
    auto w = e.validate("alice", id);
    BOOST_REQUIRE(w.status == "in_progress");
    long long now = now_ms();
    auto a = e.queue->claim(w, 8, "host_a", 1, now, now + 1000);
    auto b2 = e.queue->claim(w, 8, "host_b", 1, now, now + 1000);
    BOOST_TEST(a.size() == 8u);
    BOOST_TEST(b2.size() == 8u);
    std::set<long long> lines;
    for (auto& l : a) lines.insert(l.line_no);
    for (auto& l : b2) lines.insert(l.line_no);
    BOOST_TEST(lines.size() == 16u);
    // host_a and host_b die without sending anything. Our runner finishes the 4 free lines at
    // once and the 16 leased ones after their lease expires; each is sent exactly once.
    auto t0 = std::chrono::steady_clock::now();
    auto done = e.run(r, "alice", id);
    BOOST_TEST(done.status == "completed");
    BOOST_TEST(done.completed == 20);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 900ms));
    BOOST_TEST(e.up.counts().size() == 20u);
    for (auto& [key, n] : e.up.counts()) BOOST_TEST(n == 1, key);
    auto out = split_lines(e.content(done.output_file_id));
    BOOST_REQUIRE_EQUAL(out.size(), 20u);
    for (int i = 0; i < 20; ++i) BOOST_TEST(json::parse(out[i]).at("custom_id").as_string() == "k" + std::to_string(i));
}

BOOST_AUTO_TEST_CASE(cancel_stops_new_requests_and_keeps_partial_results) {
    env e(json::object{{"max_in_flight", 2}});
    e.up.set_latency(600ms);  // 20 lines, 2 at a time: 6 s, long after the cancel
    std::string content;
    for (int i = 0; i < 20; ++i) content += line("k" + std::to_string(i));
    std::string id = e.create("alice", content);
    host_parts r(e);
    std::thread canceller([&] {
        while (e.up.total() < 3) std::this_thread::sleep_for(5ms);
        auto c = e.table->cancel("alice", id, now_s());
        BOOST_TEST(c->status == "cancelling");
        BOOST_TEST(c->cancelling_at > 0);
    });
    auto b = e.run(r, "alice", id);
    canceller.join();
    BOOST_TEST(b.status == "cancelled");
    BOOST_TEST(b.cancelled_at > 0);
    BOOST_TEST(b.completed_at == 0);
    long long sent = e.up.total();
    BOOST_TEST(sent < 20);
    BOOST_TEST(b.completed == sent);
    BOOST_TEST(b.failed == 20 - sent);
    std::set<std::string> seen;
    for (auto& l : split_lines(e.content(b.output_file_id))) seen.insert(std::string(json::parse(l).at("custom_id").as_string()));
    auto err = split_lines(e.content(b.error_file_id));
    for (auto& l : err) {
        auto v = json::parse(l);
        BOOST_TEST(v.at("error").at("code").as_string() == "batch_cancelled");
        BOOST_TEST(seen.insert(std::string(v.at("custom_id").as_string())).second);
    }
    BOOST_TEST(seen.size() == 20u);
    // A terminal batch stays as it is.
    auto again = e.table->cancel("alice", id, 0);
    BOOST_TEST(again->status == "cancelled");
}

BOOST_AUTO_TEST_CASE(expiry_turns_unrun_lines_into_batch_expired) {
    // expires_at is created_at (whole seconds) + 5: a window of 4 to 5 s, time for at least one
    // of the 800 ms lines (also on a loaded machine) and too little for all ten.
    env e(json::object{{"max_in_flight", 1}, {"completion_window_seconds", 5}});
    e.up.set_latency(800ms);
    std::string content;
    for (int i = 0; i < 10; ++i) content += line("k" + std::to_string(i));
    std::string id = e.create("alice", content);
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "expired");
    BOOST_TEST(b.expired_at > 0);
    BOOST_TEST(b.completed >= 1);
    BOOST_TEST(b.completed + b.failed == 10);
    auto err = split_lines(e.content(b.error_file_id));
    BOOST_TEST(static_cast<long long>(err.size()) == b.failed);
    for (auto& l : err) BOOST_TEST(json::parse(l).at("error").at("code").as_string() == "batch_expired");
}

BOOST_AUTO_TEST_CASE(upstream_concurrency_is_bounded_and_owners_take_turns) {
    env e(json::object{{"max_in_flight", 8}, {"upstream", json::object{{"max_concurrency", 3}}}});
    e.up.set_latency(20ms);
    std::string big, small;
    for (int i = 0; i < 60; ++i) big += line("a" + std::to_string(i));
    for (int i = 0; i < 10; ++i) small += line("b" + std::to_string(i));
    std::string a1 = e.create("alice", big), a2 = e.create("alice", big), b1 = e.create("bob", small);
    host_parts r(e);
    BOOST_TEST(e.run(r, "alice", a1).status == "completed");
    BOOST_TEST(e.run(r, "alice", a2).status == "completed");
    BOOST_TEST(e.run(r, "bob", b1).status == "completed");
    BOOST_TEST(e.up.max_active() <= 3);
    // Bob's 10 lines were not queued behind Alice's 120: owners take turns.
    auto order = e.up.order();
    BOOST_REQUIRE_EQUAL(order.size(), 130u);
    std::size_t last_bob = 0;
    for (std::size_t i = 0; i < order.size(); ++i)
        if (order[i].starts_with("b")) last_bob = i;
    BOOST_TEST(last_bob < 40u);
}

namespace {

// Alice's big batch runs when Bob's small one arrives; every claim takes all the room there is
// (less than either owner wants). The claims' sequence numbers (claim_seq, one per claim) give
// their exact order; returned as "ABAB...": the claims made after Bob's batch became runnable.
// `limit` (an upstream key and value) is what keeps the room small; `held`: the upstream holds
// Alice's first lines until Bob's batch is runnable.
std::string claims_after_a_small_batch_arrives(json::object upstream, bool held, int big, int small) {
    env e(json::object{{"max_in_flight", 8}, {"upstream", std::move(upstream)}});
    e.up.set_held(held);
    std::string big_input, small_input;
    for (int i = 0; i < big; ++i) big_input += line("a" + std::to_string(i));
    for (int i = 0; i < small; ++i) small_input += line("b" + std::to_string(i));
    std::string a = e.create("alice", big_input);
    e.validate("alice", a);
    host_parts r(e);
    std::atomic<bool> stop{false};
    std::thread runner([&] {
        while (!stop) {
            r.runner.run();
            std::this_thread::sleep_for(5ms);
        }
    });
    auto claims = [&] {
        // (claim_seq, owner) of every claimed line, in claim order.
        auto s = e.pool->lease();
        std::vector<std::pair<long long, std::string>> out;
        long long seq = 0;
        std::string batch;
        soci::statement st = (s->prepare << "SELECT claim_seq, batch_id FROM batch_requests WHERE claim_seq > 0"
                                             " ORDER BY claim_seq, batch_id",
                              soci::into(seq), soci::into(batch));
        st.execute();
        while (st.fetch()) out.emplace_back(seq, batch == a ? "alice" : "bob");
        return out;
    };
    BOOST_REQUIRE(aqt::wait_until([&] { return e.up.total() >= 2; }, 30s));
    std::string b = e.create("bob", small_input);
    e.validate("bob", b);
    BOOST_REQUIRE(e.get("bob", b).status == "in_progress");
    // Every claim from here on may have seen Bob's batch.
    const long long c0 = claims().back().first;
    if (held) {
        BOOST_REQUIRE_EQUAL(claims().size(), 4u);  // 2 sent, 2 waiting: the upstream's bound
        std::this_thread::sleep_for(200ms);        // claims that find no room meanwhile
        BOOST_REQUIRE_EQUAL(claims().size(), 4u);
        e.up.set_held(false);
    }
    BOOST_REQUIRE(aqt::wait_until([&] { return e.up.total() == big + small; }, 60s));
    stop = true;
    runner.join();
    BOOST_TEST(e.up.counts().size() == static_cast<std::size_t>(big + small));  // each line once
    std::string seen;
    long long last = c0;
    for (const auto& [seq, owner] : claims())
        if (seq > c0 && seq != last) seen += owner == "alice" ? 'A' : 'B', last = seq;
    return seen;
}

// After Bob's batch is runnable, Alice gets at most one claim before his first, and none twice
// in a row until his last line is claimed.
void bob_waits_one_claim_at_most(const std::string& seen) {
    BOOST_TEST_MESSAGE("claims after Bob's batch arrived: " << seen);
    auto first_bob = seen.find('B'), last_bob = seen.rfind('B');
    BOOST_REQUIRE(first_bob != std::string::npos);
    BOOST_TEST(first_bob <= 1u, seen);
    BOOST_TEST(seen.substr(0, last_bob).find("AA") == std::string::npos, seen);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_small_batch_behind_a_big_one_waits_one_claim_at_most_when_the_upstream_is_full) {
    // max_concurrency 2: Alice's first 4 lines (2 sent and held, 2 queued) leave no room when
    // Bob's 6 arrive; then room comes back a line or a few at a time.
    bob_waits_one_claim_at_most(claims_after_a_small_batch_arrives({{"max_concurrency", 2}}, true, 60, 6));
}

BOOST_AUTO_TEST_CASE(a_small_batch_behind_a_big_one_waits_one_claim_at_most_under_a_rate_limit) {
    // 600 a minute: shares of 2 lines, and runs of the runner that find no share between them
    // (those must not count as turns).
    bob_waits_one_claim_at_most(
        claims_after_a_small_batch_arrives({{"max_requests_per_minute", 600}}, false, 24, 6));
}

BOOST_AUTO_TEST_CASE(https_upstream_certificate_and_host_name_are_verified) {
    auto pem = aqt::make_self_signed("localhost");
    aqt::fake_upstream tls_up(0, pem.cert, pem.key);
    auto ca = std::filesystem::temp_directory_path() / ("batches_ca_" + aq::random_id("", 8) + ".pem");
    std::ofstream(ca) << pem.cert;
    // ":PORT/fake-N/v1": base_url() names 127.0.0.1; the cases below choose the host.
    std::string port = tls_up.base_url().substr(std::string("https://127.0.0.1").size());
    auto run_one = [&](const std::string& base_url) {
        env e(json::object{{"max_attempts", 1}, {"upstream", json::object{{"base_url", base_url}}}});
        host_parts r(e);
        auto b = e.run(r, "alice", e.create("alice", line("t1")));
        BOOST_TEST(b.status == "completed");
        if (b.completed == 1) return std::string("ok");
        return std::string(json::parse(e.content(b.error_file_id)).at("error").at("message").as_string());
    };

    // Trusted through the default verify paths (SSL_CERT_FILE), name matches: it works.
    setenv("SSL_CERT_FILE", ca.c_str(), 1);
    BOOST_TEST(run_one("https://localhost" + port) == "ok");
    BOOST_TEST(tls_up.count("t1") == 1);
    // Trusted, but the URL's host is not the certificate's name.
    std::string mismatch = run_one("https://127.0.0.1" + port);
    BOOST_TEST(mismatch.find("certificate verify failed") != std::string::npos, mismatch);
    // Not trusted at all.
    unsetenv("SSL_CERT_FILE");
    std::string untrusted = run_one("https://localhost" + port);
    BOOST_TEST(untrusted.find("certificate verify failed") != std::string::npos, untrusted);
    BOOST_TEST(tls_up.count("t1") == 1);  // neither refused request reached the server's HTTP layer
    std::filesystem::remove(ca);
}

BOOST_AUTO_TEST_CASE(result_files_unavailable_are_retried_and_refused_ones_fail_the_batch) {
    env e(json::object{{"lease_seconds", 1}});
    host_parts r(e);
    e.files.refuse_create = AQ_ERR_UNAVAILABLE;
    std::string id = e.create("alice", line("a") + line("b"));
    for (int i = 0; i < 20; ++i) {
        r.once();
        std::this_thread::sleep_for(20ms);
    }
    BOOST_TEST(e.get("alice", id).status == "finalizing");  // kept, to be retried
    e.files.refuse_create = AQ_OK;
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(split_lines(e.content(b.output_file_id)).size() == 2u);
    BOOST_TEST(e.up.total() == 2);

    e.files.refuse_create = AQ_ERR_LIMIT;
    auto refused = e.run(r, "alice", e.create("alice", line("c")));
    BOOST_TEST(refused.status == "failed");
    BOOST_TEST(errors_of(refused)[0].at("code").as_string() == "output_file_rejected");
}

BOOST_AUTO_TEST_CASE(unreachable_upstream_is_retried_then_recorded_as_connection_error) {
    unsigned short closed_port;
    {
        aqt::fake_upstream gone;  // bound, then closed: nothing listens there now
        closed_port = gone.port();
    }
    env e(json::object{{"max_attempts", 3},
                       {"upstream", json::object{{"base_url", "http://127.0.0.1:" + std::to_string(closed_port) + "/v1"}}}});
    host_parts r(e);
    auto b = e.run(r, "alice", e.create("alice", line("a") + line("b")));
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.failed == 2);
    auto err = split_lines(e.content(b.error_file_id));
    BOOST_REQUIRE_EQUAL(err.size(), 2u);
    auto v = json::parse(err[0]);
    BOOST_TEST(v.at("response").is_null());
    BOOST_TEST(v.at("error").at("code").as_string() == "connection_error");
    BOOST_TEST(b.output_file_id.empty());
    BOOST_TEST(batches::batch_object(b).at("output_file_id").is_null());
}

BOOST_AUTO_TEST_CASE(a_429_with_retry_after_pauses_new_lines_to_that_upstream) {
    env e(json::object{{"max_in_flight", 1}});
    e.up.set_rule("p0", {"status", 429, 1, 0.5});
    std::string id = e.create("alice", line("p0") + line("p1") + line("p2"));
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.completed == 3);
    auto order = e.up.order();
    auto times = e.up.arrival_times();
    BOOST_REQUIRE_EQUAL(order.size(), 4u);
    BOOST_TEST(order[0] == "p0");
    BOOST_TEST(times[1] - times[0] >= 0.45);  // p1 waited for the upstream's retry-after too
}

BOOST_AUTO_TEST_CASE(a_batch_still_validating_past_its_window_expires) {
    env e(json::object{{"completion_window_seconds", 1}});
    host_parts r(e);
    std::string id = e.create("alice", line("a"));
    // Another host holds the validation lease and never finishes.
    long long now = now_ms();
    BOOST_REQUIRE(e.table->lease(id, "host_dead", now, now + 1500));
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "expired");
    BOOST_TEST(b.expired_at > 0);
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(the_request_url_is_base_url_plus_endpoint_without_v1) {
    env e;
    host_parts r(e);
    std::string content;
    for (const char* id : {"e1", "e2"})
        content += json::serialize(json::object{{"custom_id", id}, {"method", "POST"}, {"url", "/v1/embeddings"},
                                                {"body", {{"model", "m1"}, {"input", id}}}}) + "\n";
    auto b = e.run(r, "alice", e.create("alice", content, "/v1/embeddings"));
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.completed == 2);  // the fake answers 404 on any other path
    BOOST_TEST(e.up.count("e1") == 1);
}

BOOST_AUTO_TEST_CASE(config_defaults_for_leases_retry_after_and_retention) {
    json::object c{{"database", "sqlite:/tmp/x.db"},
                   {"upstreams", json::array{{{"name", "a"}, {"base_url", "http://h/v1"}, {"models", json::array{"*"}}}}}};
    auto cfg = batches::parse_config(c);
    BOOST_TEST(cfg.lease_seconds == 10u);  // renewed every 3.3 s by the heartbeat: takeover within ~10 s
    BOOST_TEST(cfg.max_retry_after_seconds == 60u);
    BOOST_TEST(cfg.results_retention_seconds == 0);
    BOOST_TEST(cfg.batch_retention_seconds == 30 * 86400);
    c["results_retention_seconds"] = 100;
    c["batch_retention_seconds"] = 50;
    try {
        batches::parse_config(c);
        BOOST_FAIL("accepted lines kept longer than their batch");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).starts_with("plugins.batches.results_retention_seconds"), e.what());
    }
}

BOOST_AUTO_TEST_CASE(retry_after_numbers_are_capped_and_garbage_is_ignored) {
    using batches::retry_after_delay_ms;
    const long long now = 1'700'000'000, cap = 60'000;
    auto ra = [&](const char* v) { return retry_after_delay_ms(std::nullopt, std::string(v), now, cap); };
    BOOST_TEST(ra("1000000000").value() == cap);
    BOOST_TEST(ra("1e9").value() == cap);
    BOOST_TEST(ra("1e30").value() == cap);
    BOOST_TEST(ra("1e308").value() == cap);
    BOOST_TEST(ra("99999999999999999999999999999999999999").value() == cap);
    BOOST_TEST(ra("2").value() == 2000);
    BOOST_TEST(ra(" 2\t").value() == 2000);  // optional whitespace around a field value
    BOOST_TEST(ra("1.5").value() == 1500);
    BOOST_TEST(ra("0").value() == 0);
    for (const char* bad : {"inf", "Infinity", "-inf", "nan", "NaN", "-1", "-0.5", "+3", "1e400", "3 s", "abc", "", "0x10",
                            "1,5"})
        BOOST_TEST(!ra(bad).has_value(), bad);
    // retry-after-ms wins; a bad one falls back to retry-after; both bad: absent.
    BOOST_TEST(retry_after_delay_ms(std::string("250"), std::string("10"), now, cap).value() == 250);
    BOOST_TEST(retry_after_delay_ms(std::string("12.7"), std::nullopt, now, cap).value() == 12);
    BOOST_TEST(retry_after_delay_ms(std::string("inf"), std::string("3"), now, cap).value() == 3000);
    BOOST_TEST(retry_after_delay_ms(std::string("1e12"), std::nullopt, now, cap).value() == cap);
    BOOST_TEST(!retry_after_delay_ms(std::string("-5"), std::string("NaN"), now, cap).has_value());
    BOOST_TEST(!retry_after_delay_ms(std::nullopt, std::nullopt, now, cap).has_value());
    // A cap of 0 ignores the upstream's wish entirely.
    BOOST_TEST(retry_after_delay_ms(std::nullopt, std::string("30"), now, 0).value() == 0);
}

BOOST_AUTO_TEST_CASE(retry_after_http_dates_in_all_three_formats) {
    using batches::parse_http_date;
    using batches::retry_after_delay_ms;
    const long long t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
    const long long now_2025 = 1'750'000'000;
    BOOST_TEST(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now_2025).value() == t);
    BOOST_TEST(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now_2025).value() == t);
    BOOST_TEST(parse_http_date("Sun Nov  6 08:49:37 1994", now_2025).value() == t);
    BOOST_TEST(parse_http_date("Sun Nov 16 08:49:37 1994", now_2025).value() == t + 10 * 86400);
    // Two-digit years: more than 50 years ahead means the century before.
    BOOST_TEST(parse_http_date("Thursday, 01-Jan-30 00:00:00 GMT", now_2025).value() == 1'893'456'000);  // 2030
    BOOST_TEST(parse_http_date("Tuesday, 01-Jan-80 00:00:00 GMT", now_2025).value() == 315'532'800);     // 1980
    BOOST_TEST(parse_http_date("Mon, 29 Feb 2016 00:00:00 GMT", now_2025).value() == 1'456'704'000);     // leap day
    for (const char* bad : {"Sun, 31 Feb 1994 08:49:37 GMT", "Mon, 29 Feb 2015 00:00:00 GMT",
                            "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
                            "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "sun, 06 Nov 1994 08:49:37 GMT",
                            "Sun, 06 Nov 1994 08:49:37 GMT x", "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
                            "Sun, 06 Xyz 1994 08:49:37 GMT", "", "tomorrow"})
        BOOST_TEST(!parse_http_date(bad, now_2025).has_value(), bad);
    // As a retry-after: the time until the date, capped; a past date means now.
    BOOST_TEST(retry_after_delay_ms(std::nullopt, std::string("Sun, 06 Nov 1994 08:50:07 GMT"), t, 60'000).value() ==
               30'000);
    BOOST_TEST(retry_after_delay_ms(std::nullopt, std::string("Sun, 06 Nov 1994 10:49:37 GMT"), t, 60'000).value() ==
               60'000);
    BOOST_TEST(retry_after_delay_ms(std::nullopt, std::string("Sun, 06 Nov 1994 08:49:00 GMT"), t, 60'000).value() == 0);
    BOOST_TEST(retry_after_delay_ms(std::nullopt, std::string("Fri, 31 Dec 9999 23:59:59 GMT"), t, 60'000).value() ==
               60'000);
}

BOOST_AUTO_TEST_CASE(a_claim_takes_lines_of_in_progress_batches_only) {
    env e;
    std::string id = e.create("alice", line("a") + line("b"));
    auto w = e.validate("alice", id);
    BOOST_REQUIRE(w.status == "in_progress");
    BOOST_REQUIRE(e.table->cancel("alice", id, now_s())->status == "cancelling");
    long long t = now_ms();
    BOOST_TEST(e.queue->claim(w, 10, "host_a", 1, t, t + 1000).empty());
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(staged_lines_are_not_claimable_before_activation_and_a_lost_lease_stops_staging) {
    env e;
    std::string id = e.create("alice", line("a"));
    auto w = e.work("alice", id);
    long long t = now_ms();
    BOOST_REQUIRE(e.table->lease(id, "host_v", t, t + 10000));
    BOOST_TEST(e.queue->stage(id, "host_v", {batches::line_row{1, "a", "m1", "{}"}}));
    BOOST_TEST(e.queue->claim(w, 10, "host_a", 1, t, t + 1000).empty());  // still validating
    BOOST_TEST(!e.queue->stage(id, "host_other", {batches::line_row{2, "b", "m1", "{}"}}));
    BOOST_TEST(!e.table->activate(id, "host_other", "m1", 1, now_s()));
    BOOST_TEST(e.line_rows(id) == 1);
    BOOST_TEST(e.table->activate(id, "host_v", "m1", 1, now_s()));
    BOOST_TEST(e.queue->claim(w, 10, "host_a", 1, t, t + 1000).size() == 1u);
}

BOOST_AUTO_TEST_CASE(housekeeping_longer_than_the_lease_sends_no_line_twice) {
    // Host A has 20 lines in flight for 6 s each while its housekeeper validates another batch
    // whose input reads slowly (about 4 s), with a lease of 2 s. Host B runs beside it all the
    // time and claims every line whose lease has lapsed. The heartbeat keeps A's leases. (A lease
    // of 1 s, renewed every 333 ms, lapsed when a loaded machine stalled host A for 0.7 s.)
    env e(json::object{{"lease_seconds", 2},
                       {"max_in_flight", 64},
                       {"upstream", json::object{{"max_concurrency", 64}, {"timeout_seconds", 30}}}});
    e.up.set_latency(6000ms);
    std::string first;
    for (int i = 0; i < 20; ++i) first += line("a" + std::to_string(i));
    std::string id1 = e.create("alice", first);
    host_parts a(e, "host_a");
    a.keeper.run();  // validates the first batch
    BOOST_REQUIRE(e.get("alice", id1).status == "in_progress");

    std::atomic<bool> stop{false};
    std::thread a_runner([&] {
        while (!stop) {
            a.runner.run();
            std::this_thread::sleep_for(20ms);
        }
    });
    while (e.up.active() < 20) std::this_thread::sleep_for(5ms);

    std::string second;
    for (int i = 0; i < 40; ++i) second += line("v" + std::to_string(i));  // ~8 KB: 8 reads of 1000 bytes
    e.files.read_delay_ms = 500;
    std::string id2 = e.create("alice", second);
    auto t0 = std::chrono::steady_clock::now();
    std::thread a_keeper([&] { a.keeper.run(); });  // takes id2's lease at once, then reads for ~4 s
    // Wait until A holds id2's lease, so B's housekeeper cannot take the validation.
    for (;;) {
        auto s = e.pool->lease();
        std::string owner;
        *s << "SELECT lease_owner FROM batches WHERE id = :id", soci::into(owner), soci::use(id2);
        if (owner == "host_a") break;
        std::this_thread::sleep_for(2ms);
    }
    host_parts b(e, "host_b");
    std::thread b_thread([&] {
        while (!stop) {
            b.once();
            std::this_thread::sleep_for(20ms);
        }
    });
    a_keeper.join();
    double validation_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    e.files.read_delay_ms = 0;
    BOOST_TEST(validation_s > 3.0, "validation took " << validation_s << " s: not longer than the lease");
    std::thread a_keeper_loop([&] {
        while (!stop) {
            a.keeper.run();
            std::this_thread::sleep_for(20ms);
        }
    });
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while ((!batches::is_terminal(e.get("alice", id1).status) || !batches::is_terminal(e.get("alice", id2).status)) &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    stop = true;
    e.fh.stop = true;  // a run with lines in flight returns only when the host stops
    a_runner.join();
    a_keeper_loop.join();
    b_thread.join();
    auto b1 = e.get("alice", id1), b2 = e.get("alice", id2);
    BOOST_TEST(b1.status == "completed");
    BOOST_TEST(b2.status == "completed");
    BOOST_TEST(b1.completed == 20);
    BOOST_TEST(b2.completed == 40);
    BOOST_TEST(e.up.counts().size() == 60u);
    for (auto& [key, n] : e.up.counts()) BOOST_TEST(n == 1, key << " was sent " << n << " times");
}

BOOST_AUTO_TEST_CASE(two_hosts_finalizing_one_batch_leave_exactly_one_output_file) {
    // Host A stalls while it commits the output file (held inside the files service); its lease
    // passes to host B, which finalizes the batch. A then finds its lease gone and deletes the
    // file it committed. With a 1 s lease A's heartbeat notices the loss before A writes the
    // error file; with 60 s the first renewal is 20 s away and A only learns it from the
    // refused final UPDATE. Both paths must end with one output file.
    for (int lease : {1, 60}) {
        BOOST_TEST_CONTEXT("lease_seconds " << lease) {
            env e(json::object{{"lease_seconds", lease}});
            e.up.set_rule("x2", {"status", 400, -1, -1});  // an error file too
            std::string id = e.create("alice", line("x0") + line("x1") + line("x2"));
            host_parts a(e, "host_a"), b(e, "host_b");
            a.keeper.run();  // validates
            a.runner.run();  // sends and records all three
            BOOST_REQUIRE(e.get("alice", id).completed + e.get("alice", id).failed == 3);
            e.files.hold_next_commit();
            std::thread a_final([&] { a.keeper.run(); });
            BOOST_REQUIRE(e.files.wait_until_commit_held(20s));
            BOOST_REQUIRE(e.get("alice", id).status == "finalizing");
            {
                // What B does once A's lease expired: it takes the batch over.
                auto s = e.pool->lease();
                *s << "UPDATE batches SET lease_owner = 'host_b', lease_until = 0 WHERE id = :id", soci::use(id);
            }
            if (lease == 1) std::this_thread::sleep_for(700ms);  // A's heartbeat renews (and fails) every 333 ms
            b.keeper.run();
            auto done = e.get("alice", id);
            BOOST_TEST(done.status == "completed");
            e.files.release_commit();
            a_final.join();
            auto outputs = e.files.with_purpose("batch_output");
            BOOST_REQUIRE_EQUAL(outputs.size(), 2u);  // one output file, one error file
            std::set<std::string> ids{outputs[0].id, outputs[1].id};
            BOOST_TEST((ids == std::set<std::string>{done.output_file_id, done.error_file_id}));
            BOOST_TEST(split_lines(e.content(done.output_file_id)).size() == 2u);
            BOOST_TEST(split_lines(e.content(done.error_file_id)).size() == 1u);
            auto after = e.get("alice", id);
            BOOST_TEST(after.output_file_id == done.output_file_id);  // A changed nothing
            BOOST_TEST(after.completed_at == done.completed_at);
        }
    }
}

BOOST_AUTO_TEST_CASE(lines_are_dropped_once_the_files_are_written) {
    env e;
    host_parts r(e);
    std::string id = e.create("alice", line("a") + line("b") + line("c"));
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(split_lines(e.content(b.output_file_id)).size() == 3u);
    BOOST_TEST(e.line_rows(id) == 0);  // no input body, no response left in batch_requests
    // A batch that failed validation keeps none of its lines either.
    std::string bad = e.create("alice", line("a") + "{broken\n");
    BOOST_TEST(e.run(r, "alice", bad).status == "failed");
    BOOST_TEST(e.line_rows(bad) == 0);
}

BOOST_AUTO_TEST_CASE(retention_keeps_lines_then_drops_them_and_purges_ended_batches) {
    // Four seconds between the two: a second was too little for a loaded machine, where the
    // housekeeper's pass on PostgreSQL dropped the lines only after the batch's time was up too.
    env e(json::object{{"results_retention_seconds", 1}, {"batch_retention_seconds", 5}});
    host_parts r(e);
    std::string id = e.create("alice", line("a") + line("b"));
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(e.line_rows(id) == 2);  // kept for results_retention_seconds
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (e.line_rows(id) > 0 && std::chrono::steady_clock::now() < deadline) {
        r.keeper.run();
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(e.line_rows(id) == 0);
    BOOST_TEST(e.table->get("alice", id).has_value());  // the batch itself stays longer
    while (e.table->get("alice", id) && std::chrono::steady_clock::now() < deadline) {
        r.keeper.run();
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(!e.table->get("alice", id).has_value());
    BOOST_TEST(e.files.get(b.output_file_id).has_value());  // files expire on their own schedule
}

BOOST_AUTO_TEST_CASE(the_shared_batch_line_rule_table_gives_the_same_verdicts_at_batch_creation) {
    // tests/batch_line/rule_cases.hpp: what batch creation must answer for each input, with
    // the table's limits, endpoint and models. The upload answers the same table (files tests).
    namespace rules = aqt::batch_rules;
    env e(json::object{{"max_line_bytes", rules::rule_case_limits::max_line_bytes},
                       {"max_requests_per_batch", rules::rule_case_limits::max_requests},
                       {"upstream", json::object{{"models", json::array{"m", "gpt-4o-mini"}}}}});
    for (const auto& c : rules::rule_cases()) {
        BOOST_TEST_CONTEXT("case " << c.name) {
            std::string id = e.create("alice", c.input, rules::rule_case_endpoint);
            e.validate("alice", id);
            auto b = e.get("alice", id);
            if (c.batch.accepted()) {
                BOOST_TEST(b.status == "in_progress", b.errors);
                BOOST_TEST(b.total == static_cast<long long>(c.requests));
                BOOST_TEST(e.line_rows(id) == static_cast<long long>(c.requests));
            } else {
                BOOST_TEST(b.status == "failed");
                BOOST_TEST(e.line_rows(id) == 0);
                auto first = errors_of(b).at(0).as_object();
                json::object expected{{"code", c.batch.code},
                                      {"message", c.batch.message},
                                      {"param", c.batch.param.empty() ? json::value(nullptr) : json::value(c.batch.param)},
                                      {"line", c.batch.line ? json::value(c.batch.line) : json::value(nullptr)}};
                BOOST_TEST(first == expected, json::serialize(first) << " != " << json::serialize(expected));
            }
        }
    }
    BOOST_TEST(e.up.total() == 0);
}

BOOST_AUTO_TEST_CASE(an_accepted_line_is_sent_upstream_byte_for_byte) {
    // The stored body is the raw text of the line's "body", not a re-serialization.
    env e;
    std::string raw = R"({ "model" : "m1",  "user": "raw", "messages": [ {"role":"user","content":"caf\u00e9 \"q\""} ], "n": 1.50 })";
    std::string input = R"({"custom_id":"raw","method":"POST","url":"/v1/chat/completions","body":)" + raw + "}\n";
    host_parts r(e);
    std::string id = e.create("alice", input);
    r.keeper.run();
    BOOST_REQUIRE(e.get("alice", id).status == "in_progress");
    auto s = e.pool->lease();
    std::string body;
    *s << "SELECT body FROM batch_requests WHERE batch_id = :b", soci::into(body), soci::use(id);
    BOOST_TEST(body == raw);
    BOOST_TEST(e.run(r, "alice", id).completed == 1);
}

BOOST_AUTO_TEST_CASE(a_host_never_claims_its_own_lines_again_after_their_lease_lapsed) {
    // The leases of lines in flight lapse without another host taking them (the database was out
    // of reach longer than the heartbeat could bridge). The host still has the lines in flight:
    // its own claims must not take them again, and the late replies are recorded.
    env e(json::object{{"lease_seconds", 30}, {"upstream", json::object{{"timeout_seconds", 30}}}});
    e.up.set_latency(2000ms);
    std::string content;
    for (int i = 0; i < 6; ++i) content += line("k" + std::to_string(i));
    std::string id = e.create("alice", content);
    host_parts a(e, "host_a");
    a.keeper.run();
    std::thread run([&] { a.runner.run(); });  // returns once all six are recorded
    while (e.up.active() < 6) std::this_thread::sleep_for(5ms);
    {
        auto s = e.pool->lease();
        *s << "UPDATE batch_requests SET lease_until = 0 WHERE batch_id = :b", soci::use(id);
    }
    run.join();
    auto b = e.run(a, "alice", id);
    BOOST_TEST(b.completed == 6);
    for (auto& [key, n] : e.up.counts()) BOOST_TEST(n == 1, key << " was sent " << n << " times");
}

BOOST_AUTO_TEST_CASE(a_line_whose_model_no_upstream_serves_any_more_fails_with_model_not_found) {
    env e;
    std::string id = e.create("alice", line("a") + line("b"));
    e.validate("alice", id);
    e.cfg.upstreams[0].models = {"m9"};  // the config changed after the batch was accepted
    host_parts r(e);
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.status == "completed");
    BOOST_TEST(b.failed == 2);
    BOOST_TEST(e.up.total() == 0);
    auto err = split_lines(e.content(b.error_file_id));
    BOOST_REQUIRE_EQUAL(err.size(), 2u);
    for (const auto& l : err) {
        auto v = json::parse(l);
        BOOST_TEST(v.at("response").is_null());
        BOOST_TEST(v.at("error").at("code") == "model_not_found");
        BOOST_TEST(v.at("error").at("message") ==
                   "No upstream serves the model m1 any more (the configuration changed after the batch was created).");
    }
}

BOOST_AUTO_TEST_CASE(a_line_claimed_while_its_upstreams_are_out_gets_its_attempt_back) {
    // A batch of m1 (served by `up`) with one m2 line, whose only upstream answers 500: after
    // one failure it is out for 1 s, while the line's retry comes within 100 ms and is claimed
    // (the batch's m1 has room) but cannot be sent. Only real sends count: 2 attempts in all.
    aqt::fake_upstream sick;
    sick.set_error_rate(1.0, 500);
    env e(json::object{{"upstream", json::object{{"models", json::array{"m1"}}}},
                       {"more_upstreams", json::array{{{"name", "sick"}, {"base_url", sick.base_url()},
                                                       {"models", json::array{"m2"}}, {"timeout_seconds", 2}}}},
                       {"max_attempts", 2},
                       {"failures_before_cooldown", 1},
                       {"cooldown_initial_ms", 1000},
                       {"cooldown_max_ms", 1000},
                       {"results_retention_seconds", 3600}});
    host_parts r(e);
    std::string id = e.create("alice", line("x0", "m1") + line("y0", "m2") + line("x1", "m1"));
    auto b = e.run(r, "alice", id);
    BOOST_TEST(b.completed == 2);
    BOOST_TEST(b.failed == 1);
    BOOST_TEST(sick.count("y0") == 2);
    BOOST_TEST(e.up.count("y0") == 0);
    long long attempts = 0;
    *e.pool->lease() << "SELECT attempts FROM batch_requests WHERE batch_id = :b AND custom_id = 'y0'",
        soci::into(attempts), soci::use(id);
    BOOST_TEST(attempts == 2);
    auto err = split_lines(e.content(b.error_file_id));
    BOOST_REQUIRE_EQUAL(err.size(), 1u);
    BOOST_TEST(json::parse(err[0]).at("response").at("status_code") == 500);
    auto log = e.fh.log();
    BOOST_TEST(std::count(log.begin(), log.end(),
                          "batches: upstream sick out of rotation for 1000 ms (1 failed attempt in a row, the last: "
                          "HTTP 500); a probe follows") == 1);
    BOOST_TEST(std::count(log.begin(), log.end(),
                          "batches: upstream sick out of rotation for 1000 ms (the probe failed: HTTP 500); a probe "
                          "follows") == 1);
}

// Pages of the SQLite database a connection has read (page cache hits and misses), so far.
long long pages_touched(soci::session& s) {
    auto* db = static_cast<soci::sqlite3_session_backend*>(s.get_backend())->conn_;
    int hit = 0, miss = 0, high = 0;
    sqlite_api::sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &hit, &high, 0);
    sqlite_api::sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &miss, &high, 0);
    return static_cast<long long>(hit) + miss;
}

BOOST_AUTO_TEST_CASE(claims_and_cancels_read_pending_lines_only_never_the_lines_done) {
    // On SQLite a line's state comes after its body, in overflow pages: a claim or a cancel that
    // walked the batch in line order read every line already done (a claim late in a 200 MiB
    // batch read most of it, holding the write lock). They read the work queue index instead.
    // SQLite's own page counters say so, on one connection (a pool of one), whatever the backend
    // of the suite's run: the cost is SQLite's.
    // The database and its -wal and -shm files go when the test ends, after env's connections.
    struct sqlite_files {
        std::string path =
            (std::filesystem::temp_directory_path() / ("batches_pages_" + aq::random_id("", 10) + ".db")).string();
        ~sqlite_files() {
            std::error_code ec;
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
        }
    } files;
    env e({{"database", "sqlite:" + files.path}});
    std::string content;
    for (int i = 0; i < 2000; ++i)
        content += R"({"custom_id":"c)" + std::to_string(i) +
                   R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","user":")" +
                   std::string(6000, 'x') + R"(","messages":[{"role":"user","content":"hi"}]}})" "\n";
    std::string id = e.create("alice", content);
    auto w = e.validate("alice", id);
    BOOST_REQUIRE(w.status == "in_progress");
    {
        auto s = e.pool->lease();
        *s << "UPDATE batch_requests SET state = 'done' WHERE batch_id = :b AND line_no <= 1990", soci::use(id);
    }
    aq::sql::pool one(e.cfg.database, 1);
    batches::line_queue q(one);
    auto pages = [&] { return pages_touched(*one.lease()); };
    long long before = pages();
    long long t = now_ms();
    auto claimed = q.claim(w, 4, "host_a", 1, t, t + 60000);
    long long by_claim = pages() - before;
    BOOST_REQUIRE(claimed.size() == 4u);
    BOOST_TEST(claimed.front().line_no == 1991);
    // 2,000 lines of 6 KB are over 4,000 pages. Measured: 61 pages (8,095 when the claim walked
    // the primary key); closing: 103 (4,139).
    BOOST_TEST(by_claim < 200, "a claim of 4 lines read " << by_claim << " pages");

    BOOST_REQUIRE(e.table->cancel("alice", id, now_s())->status == "cancelling");
    BOOST_REQUIRE(e.table->lease(id, "host_f", t, t + 60000));
    before = pages();
    BOOST_TEST(q.close_unrun(id, "host_f", batches::batch_cancelled, now_ms()));
    long long by_close = pages() - before;
    BOOST_TEST(by_close < 300, "closing 6 unrun lines read " << by_close << " pages");
    BOOST_TEST(q.count(id, now_ms()).not_done == 4);  // the 4 claimed lines, still live
}

BOOST_AUTO_TEST_CASE(webhook_signatures_match_the_standard_webhooks_example) {
    // The example of the Standard Webhooks specification (and of its reference libraries).
    auto key = batches::decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    BOOST_REQUIRE(key.has_value());
    BOOST_TEST(key->size() == 24u);
    BOOST_TEST(batches::webhook_signature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})") ==
               "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    // Padding is not key material; anything but strict base64 after the prefix is refused.
    BOOST_TEST(*batches::decode_webhook_secret("whsec_YWJj") == "abc");
    BOOST_TEST(*batches::decode_webhook_secret("whsec_YWI=") == "ab");
    BOOST_TEST(*batches::decode_webhook_secret("whsec_YQ==") == "a");
    for (const char* bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_YWJ", "whsec_YW Jj", "whsec_YWJj\n",
                            "whsec_Y=Jj", "whsec_YWJ-", "whsec_YWJj===="})
        BOOST_TEST(!batches::decode_webhook_secret(bad).has_value(), bad);
}
