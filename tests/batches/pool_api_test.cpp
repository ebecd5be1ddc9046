// Upstream pools through the real aqueductd with several fake upstreams: lines spread by weight,
// aliases sent under the upstream's own name byte for byte, an upstream killed mid-batch, one
// answering 5xx taken out of rotation and probed back, max_attempts across failover, and the
// adaptive cap of one that refuses above 20 requests at once, and rate limits (requests and
// tokens per minute, shared by two hosts on one PostgreSQL; a 429 on one host pausing the
// other). Runs on SQLite; `batches_pool_api_postgres_test` runs the same cases with `-- --postgres`.
//
// Where a count depends on the order lines were handed out, the upstreams hold every request
// until all lines have arrived (fake_upstream::set_held), so no line finishes before the last is
// sent and the choice rule of upstream_pool.hpp alone decides: the counts are exact.
#define BOOST_TEST_MODULE batches_pool_api
#include <boost/test/unit_test.hpp>

#include "batch_client.hpp"
#include "batch_input.hpp"
#include "fake_upstream.hpp"
#include "support/gateway.hpp"
#include "support/postgres.hpp"
#include "support/prometheus_text.hpp"
#include "support/wait_until.hpp"

#include <boost/json.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

using aqt::line;
using aqt::split_lines;
using client = aqt::batch_client;

// Named fake upstreams ("a", "b", ...) behind one gateway's batches plugin.
struct pool_env {
    std::vector<std::unique_ptr<aqt::fake_upstream>> ups;

    explicit pool_env(int n) {
        for (int i = 0; i < n; ++i) {
            ups.push_back(std::make_unique<aqt::fake_upstream>());
            ups.back()->set_name(name(i));
        }
    }
    static std::string name(int i) { return std::string(1, static_cast<char>('a' + i)); }
    aqt::fake_upstream& up(int i) { return *ups[static_cast<std::size_t>(i)]; }

    // `per_upstream[i]` overrides upstream i's keys (models default to ["m1"]).
    json::object config(std::vector<json::object> per_upstream, json::object batches = {}) {
        json::array upstreams;
        for (std::size_t i = 0; i < ups.size(); ++i) {
            json::object u{{"name", name(static_cast<int>(i))}, {"base_url", ups[i]->base_url()},
                           {"models", json::array{"m1"}}, {"max_concurrency", 64}, {"timeout_seconds", 30}};
            if (i < per_upstream.size())
                for (auto& [k, v] : per_upstream[i]) u[k] = v;
            upstreams.push_back(u);
        }
        json::object b{{"enabled", true},
                       {"requires", json::array{"files"}},
                       {"upstreams", upstreams},
                       {"poll_interval_ms", 50},
                       {"lease_seconds", 2},
                       {"backoff_initial_ms", 10},
                       {"backoff_max_ms", 50}};
        for (auto& [k, v] : batches) b[k] = v;
        json::object c{{"plugins", {{"files", {{"enabled", true}, {"purposes", json::array{"batch"}}}}, {"batches", b}}}};
        if (aqt::use_postgres()) c["database"] = aqt::postgres_url();
        return c;
    }

    long long total() const {
        long long n = 0;
        for (const auto& u : ups) n += u->total();
        return n;
    }
    void hold(bool held) {
        for (auto& u : ups) u->set_held(held);
    }
};

std::string lines(const std::string& prefix, int n, const std::string& model = "m1") {
    std::string s;
    for (int i = 0; i < n; ++i) s += line(prefix + std::to_string(i), model);
    return s;
}

// custom_id -> the name of the fake that answered it (from the output's request_id
// "req_NAME_KEY_N"); a custom_id seen twice fails the test.
std::map<std::string, std::string> answered_by(const std::string& output) {
    std::map<std::string, std::string> out;
    for (const auto& l : split_lines(output)) {
        auto v = json::parse(l);
        std::string cid(v.at("custom_id").as_string());
        std::string rid(v.at("response").at("request_id").as_string());
        BOOST_TEST(rid.starts_with("req_"), rid);
        BOOST_TEST(out.emplace(cid, rid.substr(4, rid.find('_', 4) - 4)).second, "twice: " + cid);
    }
    return out;
}

// The value of the per-upstream gauge `family` for `upstream`, scraped from /metrics.
double upstream_gauge(const aqt::gateway& gw, const std::string& family, const std::string& upstream) {
    aqt::http::client c(gw.port());
    auto r = c.get("/metrics", {{"Authorization", gw.bearer("alice")}});
    BOOST_REQUIRE_EQUAL(r.status, 200);
    auto s = aqt::prometheus::parse(r.body);
    std::string series = family + "{upstream=\"" + upstream + "\"}";
    BOOST_REQUIRE_MESSAGE(s.contains(series), series);
    return aqt::prometheus::value(s, series);
}

double in_rotation(const aqt::gateway& gw, const std::string& upstream) {
    return upstream_gauge(gw, "aqueduct_batches_upstream_in_rotation", upstream);
}

double concurrency_cap(const aqt::gateway& gw, const std::string& upstream) {
    return upstream_gauge(gw, "aqueduct_batches_upstream_concurrency_cap", upstream);
}

long long completed(client& c, const std::string& id) {
    return c.get(id).at("request_counts").at("completed").as_int64();
}

}  // namespace

BOOST_AUTO_TEST_CASE(lines_spread_across_replicas_by_weight) {
    // Weights 3 and 1, equal max_concurrency, all 40 lines in flight at once: the rule hands out
    // A A A B over and over, so exactly lines 3, 7, 11, ... go to b.
    pool_env e(2);
    e.hold(true);
    aqt::gateway gw(e.config({{{"weight", 3}}, {}}));
    client alice(gw, "alice");
    std::string id = alice.create_batch(alice.upload(lines("w", 40)));
    BOOST_REQUIRE(aqt::wait_until([&] { return e.total() == 40; }, 60s));
    BOOST_TEST(e.up(0).total() == 30);
    BOOST_TEST(e.up(1).total() == 10);
    e.hold(false);
    auto b = alice.wait(id, {"completed", "failed"});
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":40,"completed":40,"failed":0})"));
    auto by = answered_by(alice.content(b.at("output_file_id")));
    BOOST_TEST(by.size() == 40u);
    for (int i = 0; i < 40; ++i) {
        std::string cid = "w" + std::to_string(i);
        BOOST_TEST(by[cid] == (i % 4 == 3 ? "b" : "a"), cid);
        BOOST_TEST(e.up(0).count(cid) + e.up(1).count(cid) == 1, cid);
    }
}

BOOST_AUTO_TEST_CASE(an_alias_is_sent_under_the_upstreams_name_and_every_other_byte_as_stored) {
    // a serves gpt-4o-mini as Qwen/Qwen2.5-7B-Instruct, b under its public name; equal weights
    // alternate a, b, a, b.
    pool_env e(2);
    e.hold(true);
    for (auto& u : e.ups) u->keep_bodies(true);
    aqt::gateway gw(e.config({{{"models", json::array{json::object{{"gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct"}}}}},
                              {{"models", json::array{"gpt-4o-mini"}}}}));
    client alice(gw, "alice");
    // Spacing, a nested "model", escapes and number spellings that a re-serialisation would change.
    auto body = [](int i) {
        return "{ \"messages\" : [ {\"role\":\"user\", \"content\":\"caf\\u00e9 \\/ \\\"model\\\"\", \"model\": \"inner\"} ],"
               "\t  \"model\" :  \"gpt-4o-mini\" ,\"temperature\":1.50E0, \"user\":\"x" +
               std::to_string(i) + "\" }";
    };
    std::string input;
    for (int i = 0; i < 4; ++i)
        input += "{\"custom_id\":\"x" + std::to_string(i) +
                 "\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":" + body(i) + "}\n";
    std::string id = alice.create_batch(alice.upload(input));
    BOOST_REQUIRE(aqt::wait_until([&] { return e.total() == 4; }, 60s));
    for (int i = 0; i < 4; ++i) {
        std::string cid = "x" + std::to_string(i), sent = body(i);
        if (i % 2 == 0) {
            std::string alias = sent;
            alias.replace(alias.find("\"gpt-4o-mini\""), 13, "\"Qwen/Qwen2.5-7B-Instruct\"");
            BOOST_TEST(e.up(0).bodies(cid) == std::vector<std::string>{alias}, cid);
            BOOST_TEST(e.up(1).count(cid) == 0, cid);
        } else {
            BOOST_TEST(e.up(1).bodies(cid) == std::vector<std::string>{sent}, cid);
            BOOST_TEST(e.up(0).count(cid) == 0, cid);
        }
    }
    e.hold(false);
    auto b = alice.wait(id, {"completed", "failed"});
    BOOST_TEST(b.at("model") == "gpt-4o-mini");
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":4,"completed":4,"failed":0})"));
    // The response is stored as the upstream sent it, with the upstream's name for the model.
    for (const auto& l : split_lines(alice.content(b.at("output_file_id")))) {
        auto v = json::parse(l);
        bool on_a = std::string(v.at("response").at("request_id").as_string()).starts_with("req_a_");
        BOOST_TEST(v.at("response").at("body").at("model") == (on_a ? "Qwen/Qwen2.5-7B-Instruct" : "gpt-4o-mini"));
    }
}

BOOST_AUTO_TEST_CASE(an_upstream_that_dies_mid_batch_leaves_its_lines_to_the_others) {
    pool_env e(3);
    for (auto& u : e.ups) u->set_latency(20ms);
    aqt::gateway gw(e.config({{{"max_concurrency", 4}}, {{"max_concurrency", 4}}, {{"max_concurrency", 4}}},
                             {{"cooldown_initial_ms", 200}, {"cooldown_max_ms", 400}}));
    client alice(gw, "alice");
    const int n = 150;
    std::string id = alice.create_batch(alice.upload(lines("d", n)));
    BOOST_REQUIRE(aqt::wait_until([&] { return e.up(0).total() >= 20; }, 60s));
    e.up(0).stop();  // connections reset, new ones refused
    auto b = alice.wait(id, {"completed", "failed"}, 120s);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":150,"completed":150,"failed":0})"));
    BOOST_TEST(alice.content(b.at("error_file_id")).empty());
    auto by = answered_by(alice.content(b.at("output_file_id")));
    BOOST_TEST(by.size() == static_cast<std::size_t>(n));
    // Each line: answered by a before it died (then b and c never saw it), or by b or c exactly once.
    long long on_survivors = 0;
    for (int i = 0; i < n; ++i) {
        std::string cid = "d" + std::to_string(i);
        int survivors = e.up(1).count(cid) + e.up(2).count(cid);
        if (by[cid] == "a") {
            BOOST_TEST(survivors == 0, cid);
            BOOST_TEST(e.up(0).count(cid) >= 1, cid);
        } else {
            BOOST_TEST((by[cid] == "b" || by[cid] == "c"), cid);
            BOOST_TEST(survivors == 1, cid);
            ++on_survivors;
        }
    }
    BOOST_TEST(e.up(1).total() + e.up(2).total() == on_survivors);
    BOOST_TEST(on_survivors < n);  // a answered some before it died
    BOOST_TEST(gw.log_count("batches: upstream a out of rotation for 200 ms (3 failed attempts in a row") == 1u, gw.log());
    BOOST_TEST(in_rotation(gw, "a") == 0);
    BOOST_TEST(in_rotation(gw, "b") == 1);
}

BOOST_AUTO_TEST_CASE(an_upstream_answering_5xx_is_taken_out_then_probed_back) {
    // 500s: a 503 above min_concurrency only lowers the adaptive cap (the last case below).
    pool_env e(2);
    e.up(0).set_error_rate(1.0, 500);
    aqt::gateway gw(e.config({}, {{"cooldown_initial_ms", 300}, {"cooldown_max_ms", 300}}));
    client alice(gw, "alice");
    std::string first = alice.create_batch(alice.upload(lines("f", 20)));
    auto b = alice.wait(first, {"completed", "failed"});
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":20,"completed":20,"failed":0})"));
    BOOST_TEST(gw.wait_for_log("batches: upstream a out of rotation for 300 ms (3 failed attempts in a row, the last: "
                               "HTTP 500); a probe follows"),
               gw.log());
    BOOST_TEST(in_rotation(gw, "a") == 0);
    BOOST_TEST(in_rotation(gw, "b") == 1);

    // a recovers. After its cooldown, the next batch's first line is its probe, held there:
    // every other line goes to b meanwhile.
    e.up(0).set_error_rate(0);
    e.up(0).set_held(true);
    long long a_before = e.up(0).total();
    std::this_thread::sleep_for(400ms);  // longer than the 300 ms cooldown
    std::string second = alice.create_batch(alice.upload(lines("s", 20)));
    BOOST_REQUIRE(aqt::wait_until([&] { return completed(alice, second) == 19; }, 60s));
    BOOST_TEST(e.up(0).total() - a_before == 1);
    BOOST_TEST(in_rotation(gw, "a") == 0);
    BOOST_TEST(gw.log_count("back in rotation") == 0u);
    e.up(0).set_held(false);
    b = alice.wait(second, {"completed", "failed"});
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":20,"completed":20,"failed":0})"));
    BOOST_TEST(gw.wait_for_log("batches: upstream a back in rotation (the probe answered HTTP 200)"), gw.log());
    BOOST_TEST(in_rotation(gw, "a") == 1);

    // Back in rotation, a takes its share again: with equal weights, every other line.
    for (auto& u : e.ups) u->reset_counts();
    e.hold(true);
    std::string third = alice.create_batch(alice.upload(lines("t", 20)));
    BOOST_REQUIRE(aqt::wait_until([&] { return e.total() == 20; }, 60s));
    BOOST_TEST(e.up(0).total() == 10);
    BOOST_TEST(e.up(1).total() == 10);
    e.hold(false);
    b = alice.wait(third, {"completed", "failed"});
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":20,"completed":20,"failed":0})"));
}

BOOST_AUTO_TEST_CASE(max_attempts_counts_every_attempt_across_failover) {
    // a answers 503 to everything, b to the two "bad" lines only. Nobody leaves rotation here
    // (failures_before_cooldown 1000), so only the attempt count and failover are at work.
    pool_env e(2);
    e.up(0).set_error_rate(1.0, 503);
    e.up(1).set_rule("bad0", {"status", 503, -1, -1});
    e.up(1).set_rule("bad1", {"status", 503, -1, -1});
    aqt::gateway gw(e.config({}, {{"max_attempts", 3}, {"failures_before_cooldown", 1000}}));
    client alice(gw, "alice");
    std::string input = lines("g", 10) + line("bad0") + line("bad1");
    std::string id = alice.create_batch(alice.upload(input));
    auto b = alice.wait(id, {"completed", "failed"});
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":12,"completed":10,"failed":2})"));
    for (const char* bad : {"bad0", "bad1"}) {
        // Three attempts in all, never twice in a row on the same upstream.
        BOOST_TEST(e.up(0).count(bad) + e.up(1).count(bad) == 3, bad);
        BOOST_TEST(e.up(0).count(bad) >= 1, bad);
        BOOST_TEST(e.up(1).count(bad) >= 1, bad);
    }
    for (int i = 0; i < 10; ++i) {
        // A line that failed on a went to b next, and b answered it: at most one try on a.
        std::string cid = "g" + std::to_string(i);
        BOOST_TEST(e.up(1).count(cid) == 1, cid);
        BOOST_TEST(e.up(0).count(cid) <= 1, cid);
    }
    auto errors = split_lines(alice.content(b.at("error_file_id")));
    BOOST_REQUIRE_EQUAL(errors.size(), 2u);
    for (const auto& l : errors) {
        auto v = json::parse(l);
        BOOST_TEST(v.at("response").at("status_code") == 503);
        std::string cid(v.at("custom_id").as_string());
        BOOST_TEST(std::string(v.at("response").at("body").at("error").at("message").as_string()) ==
                   "injected 503 for " + cid);
    }
    BOOST_TEST(answered_by(alice.content(b.at("output_file_id"))).size() == 10u);
}

BOOST_AUTO_TEST_CASE(a_model_whose_upstreams_are_all_busy_does_not_hold_up_other_models) {
    // a serves m1 with max_concurrency 2 and holds every request; b serves m2.
    pool_env e(2);
    e.up(0).set_held(true);
    aqt::gateway gw(e.config({{{"max_concurrency", 2}}, {{"models", json::array{"m2"}}}}));
    client alice(gw, "alice"), bob(gw, "bob");
    std::string stuck = alice.create_batch(alice.upload(lines("s", 20)));
    BOOST_REQUIRE(aqt::wait_until([&] { return e.up(0).total() == 2; }, 60s));
    // Both owners' m2 batches run to the end while every m1 line a can take is stuck there.
    std::string other = alice.create_batch(alice.upload(lines("o", 10, "m2")));
    std::string bobs = bob.create_batch(bob.upload(lines("p", 10, "m2")));
    for (auto [c, id] : {std::pair{&alice, other}, std::pair{&bob, bobs}}) {
        auto b = c->wait(id, {"completed", "failed"});
        BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":10,"completed":10,"failed":0})"));
    }
    BOOST_TEST(e.up(1).total() == 20);
    // a got no more than it can run; 2 more wait for a connection, the other 16 in the database.
    BOOST_TEST(e.up(0).total() == 2);
    BOOST_TEST(alice.get(stuck).at("status") == "in_progress");
    e.up(0).set_held(false);
    auto b = alice.wait(stuck, {"completed", "failed"});
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":20,"completed":20,"failed":0})"));
    BOOST_TEST(e.up(0).total() == 20);
}

BOOST_AUTO_TEST_CASE(aqueductd_refuses_an_alias_named_twice_and_a_models_only_upstream_at_weight_0) {
    pool_env e(2);
    auto f = aqt::expect_startup_failure(e.config({{{"models", json::array{"m1", json::object{{"m1", "Qwen"}}}}}}));
    BOOST_TEST(!f.status.success());
    BOOST_TEST(f.log.find("plugins.batches.upstreams[0].models[1].m1: names the model \"m1\" twice on this upstream") !=
                   std::string::npos,
               f.log);
    f = aqt::expect_startup_failure(e.config({{}, {{"models", json::array{"m2"}}, {"weight", 0}}}));
    BOOST_TEST(!f.status.success());
    BOOST_TEST(f.log.find("plugins.batches.upstreams[1].weight: 0 on every upstream serving the model \"m2\": its lines "
                          "could never be sent") != std::string::npos,
               f.log);
}

BOOST_AUTO_TEST_CASE(an_upstream_refusing_above_20_at_once_settles_the_cap_near_20_and_loses_no_line) {
    // a has 20 slots: a request finding them all taken is answered 503 at once, and each served
    // request takes 5 ms + 1 ms per request being served. max_concurrency 64 starts far above.
    pool_env e(1);
    e.up(0).set_latency(5ms);
    e.up(0).set_overload(20, 1ms);
    // Lines of the first flights can be refused more than once while the cap comes down from 64
    // (seen: at most 3 attempts for a line); 10 attempts leave room for a loaded machine.
    aqt::gateway gw(e.config({}, {{"max_attempts", 10}}));
    client alice(gw, "alice");
    BOOST_TEST(concurrency_cap(gw, "a") == 64);
    const int n = 500;
    std::string id = alice.create_batch(alice.upload(lines("c", n)));
    auto b = alice.wait(id, {"completed", "failed"}, 120s);
    BOOST_TEST(b.at("request_counts") == json::parse(R"({"total":500,"completed":500,"failed":0})"));
    BOOST_TEST(alice.content(b.at("error_file_id")).empty());
    BOOST_TEST(answered_by(alice.content(b.at("output_file_id"))).size() == static_cast<std::size_t>(n));
    // Every line was served exactly once; every other request a received was refused.
    BOOST_TEST(e.up(0).total() - e.up(0).overload_refusals() == n);
    BOOST_TEST(e.up(0).overload_refusals() > 0);
    BOOST_TEST(e.up(0).max_active() == 20);  // a refusal means 20 were being served
    // The first refusal came from the first flight, sent at 64.
    BOOST_TEST(gw.log_count("batches: upstream a concurrency cap ") >= 1u, gw.log());
    BOOST_TEST(gw.log_count("batches: upstream a concurrency cap 64 -> 32 (HTTP 503)") == 1u, gw.log());
    double cap = concurrency_cap(gw, "a");
    BOOST_TEST_MESSAGE("cap at the end " << cap << ", refusals " << e.up(0).overload_refusals() << ", decreases "
                                         << gw.log_count("batches: upstream a concurrency cap "));
    // Settled near 20, below the first decrease's 32. After the first flights have drained
    // (64 -> 32 -> 16), a decrease needs a refusal of a line sent at the current cap once every
    // older line has answered: 20 being served plus that line, so it starts from a cap of at
    // least 21 and ends at least at 10. Past 21 the cap grows only after whole windows of
    // successes with the gateway counting more lines in flight than the fake serves, i.e.
    // replies on their way back: a fast machine does that for a window or two (a CI run on an
    // idle machine ended at 23; 20 runs on a loaded one ended at 11 to 21; a sanitizer build,
    // whose gateway takes replies in slower still, ended at 33 once). Such growth happens only
    // while a never serves more than 20 (max_active above), so the bound says that the cap came
    // down and stayed down: below the midpoint between its start and its first decrease.
    BOOST_TEST(cap >= 10);
    BOOST_TEST(cap < 48);
    BOOST_TEST(in_rotation(gw, "a") == 1);
}

// ---- rate limits (upstream_pool.hpp, rate_table.hpp) --------------------------------------------
//
// The bounds the runner keeps, for a limit of R a second (max_requests_per_minute / 60): a
// bucket holds at most 200 ms of R (its burst), a host spends a share of at most 200 ms of R
// within 200 ms of drawing it, so over any window of W seconds the upstream receives at most
// burst + R x (W + 0.2): 1.4 R within any second (the fake refuses above that, so a 429 would
// show a broken bound), and from the first request to the last of N lines at least
// (N - burst) / R seconds (grants precede sends; 0.2 s are allowed for the first request's
// connection). A token limit lets a host send one line beyond its balance: one line more for
// each. Each case runs a few seconds.

namespace {

// The limit's bound within any second, and the least span of `n` requests, at `per_second`.
int most_per_second(int per_second) { return per_second + per_second * 2 / 5; }
double least_span(int n, int per_second) { return static_cast<double>(n - per_second / 5) / per_second - 0.2; }

double span(const aqt::fake_upstream& up) {
    auto t = up.arrival_times();
    return t.empty() ? 0 : t.back() - t.front();
}

// A line whose body asks for `max_tokens` (content "hi": one token of prompt).
std::string token_line(const std::string& custom_id, int max_tokens) {
    json::object body{{"model", "m1"}, {"user", custom_id}, {"max_tokens", max_tokens},
                      {"messages", json::array{{{"role", "user"}, {"content", "hi"}}}}};
    return json::serialize(json::object{{"custom_id", custom_id}, {"method", "POST"}, {"url", "/v1/chat/completions"},
                                        {"body", body}}) + "\n";
}

// Waits for batch `id` of `n` lines and holds what `up` received to the bounds above at
// `per_second`; `extra`: the lines a token limit may send beyond the hosts' balances. Returns
// the time from the first request to the last.
double expect_within_rate(client& c, const std::string& id, const aqt::fake_upstream& up, int n, int per_second,
                          int extra = 0) {
    auto b = c.wait(id, {"completed", "failed"}, 60s);
    BOOST_TEST(b.at("request_counts") == (json::object{{"total", n}, {"completed", n}, {"failed", 0}}));
    BOOST_TEST(answered_by(c.content(b.at("output_file_id"))).size() == static_cast<std::size_t>(n));
    BOOST_TEST(up.rate_refusals() == 0);
    BOOST_TEST(up.total() == n);  // each line sent once
    BOOST_TEST_MESSAGE("most within a second " << up.max_arrivals_within(1000ms) << ", span " << span(up));
    BOOST_TEST(up.max_arrivals_within(1000ms) <= most_per_second(per_second) + extra);
    BOOST_TEST(span(up) >= least_span(n - extra, per_second));
    return span(up);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_rate_limited_upstream_never_sees_more_than_max_requests_per_minute) {
    // 600 a minute: 10 a second, a burst of 2; 40 lines take at least 3.6 s.
    pool_env e(1);
    e.up(0).set_rate_limit(most_per_second(10), 1000ms, 1);
    aqt::gateway gw(e.config({{{"max_requests_per_minute", 600}}}));
    client alice(gw, "alice");
    const int n = 40;
    std::string id = alice.create_batch(alice.upload(lines("r", n)));
    expect_within_rate(alice, id, e.up(0), n, 10);
}

BOOST_AUTO_TEST_CASE(a_token_limited_upstream_is_held_to_max_tokens_per_minute_by_the_usage_it_reports) {
    // 9,000 tokens a minute: 150 a second. Each line is estimated at 101 tokens (1 of prompt,
    // max_tokens 100) and uses 15 (the fake's usage.total_tokens): the corrected budget runs
    // 10 lines a second, the estimates alone would allow 1.5.
    pool_env e(1);
    e.up(0).set_rate_limit(most_per_second(10) + 1, 1000ms, 1);  // one line beyond the balance
    aqt::gateway gw(e.config({{{"max_tokens_per_minute", 9000}}}));
    client alice(gw, "alice");
    const int n = 30;
    std::string input;
    for (int i = 0; i < n; ++i) input += token_line("k" + std::to_string(i), 100);
    std::string id = alice.create_batch(alice.upload(input));
    // In tokens: 15 per line, a burst of 30 tokens (2 lines), and the line beyond the balance.
    double took = expect_within_rate(alice, id, e.up(0), n, 10, 1);
    // The corrections at work: far fewer seconds than 30 lines at 101 tokens (20 s).
    BOOST_TEST(took < 15);
}

BOOST_AUTO_TEST_CASE(two_hosts_on_one_database_share_an_upstreams_rate,
                     *boost::unit_test::label("postgres_only")) {
    // two hosts need one database: the PostgreSQL run of this suite only (tests/batches/CMakeLists.txt)
    BOOST_TEST_REQUIRE(aqt::use_postgres());
    // 1200 a minute: 20 a second for both hosts together, a burst of 4; 80 lines take at least
    // 3.6 s. Both hosts take lines (asserted below), each drawing its shares from the table.
    pool_env e(1);
    e.up(0).set_rate_limit(most_per_second(20), 1000ms, 1);
    auto cfg = e.config({{{"max_requests_per_minute", 1200}}}, {{"max_in_flight", 8}});
    aqt::gateway one(cfg), two(cfg);
    client alice(one, "alice");
    const int n = 80;
    std::string id = alice.create_batch(alice.upload(lines("h", n)));
    expect_within_rate(alice, id, e.up(0), n, 20);
    // Each host sent lines: its aqueduct_batches_upstream_requests_total is above 0.
    for (auto* gw : {&one, &two}) {
        aqt::http::client c(gw->port());
        auto r = c.get("/metrics", {{"Authorization", gw->bearer("alice")}});
        auto s = aqt::prometheus::parse(r.body);
        double sent = 0;
        for (const auto& [series, v] : s)
            if (series.starts_with("aqueduct_batches_upstream_requests_total")) sent += v;
        BOOST_TEST(sent > 0);
    }
}

BOOST_AUTO_TEST_CASE(a_429_received_by_one_host_pauses_the_upstream_on_every_host,
                     *boost::unit_test::label("postgres_only")) {
    // two hosts need one database: the PostgreSQL run of this suite only (tests/batches/CMakeLists.txt)
    BOOST_TEST_REQUIRE(aqt::use_postgres());
    // The first request of "trigger" gets a 429 with retry-after 8 s. Once both hosts know
    // (one from the reply, the other from the table), a batch of 10 lines waits: no request
    // reaches the upstream until the 8 s have passed (8: room for a loaded machine to learn of it). Without the shared pause, the host that
    // did not receive the 429 would claim and send them at once.
    pool_env e(1);
    e.up(0).set_rule("trigger", {"status", 429, 1, 8});
    auto cfg = e.config({});
    aqt::gateway one(cfg), two(cfg);
    client alice(one, "alice");
    std::string first = alice.create_batch(alice.upload(line("trigger")));
    BOOST_REQUIRE(aqt::wait_until([&] { return e.up(0).count("trigger") == 1; }, 60s));
    double refused_at = e.up(0).arrival_times().front();
    const std::string mine = "batches: upstream a paused for ", learned = " ms (a 429's retry-after on another host)";
    BOOST_REQUIRE(aqt::wait_until([&] { return one.log_count(mine) == 1 && two.log_count(mine) == 1; }, 10s));
    BOOST_TEST(one.log_count(learned) + two.log_count(learned) == 1u, one.log() + two.log());
    BOOST_REQUIRE_MESSAGE(e.up(0).now() < refused_at + 6, "too slow to learn of the pause: the test proves nothing");
    std::string second = alice.create_batch(alice.upload(lines("p", 10)));
    for (const auto& id : {first, second}) {
        auto b = alice.wait(id, {"completed", "failed"}, 60s);
        BOOST_TEST(b.at("request_counts").at("failed") == 0);
    }
    BOOST_TEST(e.up(0).count("trigger") == 2);
    BOOST_TEST(e.up(0).total() == 12);
    // Every request after the 429 came 8 s after it at least (50 ms for the two clocks).
    auto t = e.up(0).arrival_times();
    for (std::size_t i = 1; i < t.size(); ++i) BOOST_TEST(t[i] >= refused_at + 8.0 - 0.05, i);
}

BOOST_AUTO_TEST_CASE(aqueductd_refuses_a_rate_limit_of_0_naming_the_key) {
    pool_env e(1);
    auto f = aqt::expect_startup_failure(e.config({{{"max_requests_per_minute", 0}}}));
    BOOST_TEST(!f.status.success());
    BOOST_TEST(f.log.find("plugins.batches.upstreams[0].max_requests_per_minute: must be between 1 and 1000000000") !=
                   std::string::npos,
               f.log);
    f = aqt::expect_startup_failure(e.config({{{"max_tokens_per_minute", -1}}}));
    BOOST_TEST(!f.status.success());
    BOOST_TEST(f.log.find("plugins.batches.upstreams[0].max_tokens_per_minute: expected a non-negative integer") !=
                   std::string::npos,
               f.log);
}
