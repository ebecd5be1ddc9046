// Upstream pools in-process, without a database: the config of models, aliases and weights (and
// what it refuses), rewriting a body's model byte-exactly, and upstream_pool's choice and health
// rules driven with a load the test sets by hand. The same behaviour through the real aqueductd
// and several fake upstreams is in pool_api_test.cpp.
#define BOOST_TEST_MODULE batches_upstream_pool
#include <boost/test/unit_test.hpp>

#include "fake_files.hpp"

#include "config.hpp"
#include "model_rewrite.hpp"
#include "rate_allowance.hpp"
#include "rate_table.hpp"
#include "token_estimate.hpp"
#include "upstream_pool.hpp"

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace json = boost::json;

namespace {

json::object upstream(const std::string& name, json::array models, json::object extra = {}) {
    json::object u{{"name", name}, {"base_url", "http://" + name + "/v1"}, {"models", std::move(models)}};
    for (auto& [k, v] : extra) u[k] = v;
    return u;
}

batches::config config_of(json::array upstreams, json::object extra = {}) {
    json::object c{{"database", "sqlite:/tmp/x.db"}, {"upstreams", std::move(upstreams)}};
    for (auto& [k, v] : extra) c[k] = v;
    return batches::parse_config(c);
}

// The message parse_config refuses `upstreams` with ("" when it accepts them).
std::string refusal(json::array upstreams, json::object extra = {}) {
    try {
        config_of(std::move(upstreams), std::move(extra));
        return "";
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
}

batches::upstream_reply answer(int status) {
    batches::upstream_reply r;
    r.status = status;
    return r;
}

batches::upstream_reply no_answer(const char* code) {
    batches::upstream_reply r;
    r.error_code = code;
    return r;
}

// A pool over `cfg` whose loads the test sets.
struct pool_env {
    batches::config cfg;
    aqt::fake_host fh;
    std::vector<std::size_t> load;
    batches::upstream_pool pool;

    explicit pool_env(batches::config c)
        : cfg(std::move(c)), load(cfg.upstreams.size(), 0),
          pool(fh.host(), cfg, [this](std::size_t i) { return load[i]; }, nullptr) {}

    // Picks `n` lines of `model` in a row, each staying in flight; the upstreams' first letters.
    std::string picks(const std::string& model, int n, long long now = 0) {
        std::string out;
        for (int i = 0; i < n; ++i) {
            auto c = pool.pick(model, now);
            if (!c) return out + "-";
            ++load[c->index];
            out += cfg.upstreams[c->index].name.substr(0, 1);
        }
        return out;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(models_entries_are_names_or_aliases_and_weight_defaults_to_1) {
    auto cfg = config_of({upstream("vllm", {"llama", json::object{{"gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct"}}}),
                          upstream("openai", {"*"}, {{"weight", 3}}), upstream("old", {"llama"}, {{"weight", 0}})});
    BOOST_TEST(cfg.upstreams[0].weight == 1u);
    BOOST_TEST(cfg.upstreams[1].weight == 3u);
    BOOST_TEST(*cfg.upstreams[0].upstream_model("gpt-4o-mini") == "Qwen/Qwen2.5-7B-Instruct");
    BOOST_TEST(*cfg.upstreams[0].upstream_model("llama") == "llama");
    BOOST_TEST(!cfg.upstreams[0].upstream_model("Qwen/Qwen2.5-7B-Instruct"));  // only the public name is served
    BOOST_TEST(*cfg.upstreams[1].upstream_model("anything") == "anything");
    BOOST_TEST(cfg.served("gpt-4o-mini"));
    BOOST_TEST(cfg.failures_before_cooldown == 3u);
    BOOST_TEST(cfg.cooldown_initial_ms == 1000u);
    BOOST_TEST(cfg.cooldown_max_ms == 60000u);
    // A weight of 0 drains an upstream: a model only it serves is not served.
    auto drained = config_of({upstream("a", {"m1"}), upstream("b", {"m1", "m2"}, {{"weight", 0}}), upstream("c", {"m2"})});
    BOOST_TEST(drained.served("m1"));
    BOOST_TEST(drained.served("m2"));
    BOOST_TEST(!drained.served("m3"));
}

BOOST_AUTO_TEST_CASE(config_refuses_aliases_named_twice_and_a_zero_weight_on_a_models_only_upstreams) {
    const std::string p = "plugins.batches.";
    BOOST_TEST(refusal({upstream("a", {"m1", "m1"})}) == p + "upstreams[0].models[1]: names the model \"m1\" twice on this upstream");
    BOOST_TEST(refusal({upstream("a", {"m1", json::object{{"m1", "x"}}})}) ==
               p + "upstreams[0].models[1].m1: names the model \"m1\" twice on this upstream");
    BOOST_TEST(refusal({upstream("a", {json::object{{"g", "x"}}, json::object{{"g", "y"}}})}) ==
               p + "upstreams[0].models[1].g: names the model \"g\" twice on this upstream");
    BOOST_TEST(refusal({upstream("a", {json::object{{"*", "x"}}})}) ==
               p + "upstreams[0].models[0].*: an alias needs a public model name (not \"*\")");
    BOOST_TEST(refusal({upstream("a", {json::object{{"g", ""}}})}) ==
               p + "upstreams[0].models[0].g: expected the upstream's model name (a non-empty string)");
    BOOST_TEST(refusal({upstream("a", {json::object{{"g", 7}}})}) ==
               p + "upstreams[0].models[0].g: expected the upstream's model name (a non-empty string)");
    BOOST_TEST(refusal({upstream("a", {json::object{}})}) ==
               p + "upstreams[0].models[0]: expected at least one alias {\"public name\": \"upstream name\"}");
    BOOST_TEST(refusal({upstream("a", {3})}) == p + "upstreams[0].models[0]: expected a model name or {\"public name\": \"upstream name\"}");
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"weight", 1001}})}) == p + "upstreams[0].weight: must be between 0 and 1000");
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"weight", -1}})}) == p + "upstreams[0].weight: expected a non-negative integer");
    // The same public name on two upstreams, mapped differently, is a pool, not a conflict.
    BOOST_TEST(refusal({upstream("a", {json::object{{"g", "x"}}}), upstream("b", {json::object{{"g", "y"}}})}) == "");
    // A weight of 0 on the only upstream of a model (named, aliased or "*").
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"weight", 0}})}) ==
               p + "upstreams[0].weight: 0 on every upstream serving the model \"m1\": its lines could never be sent");
    BOOST_TEST(refusal({upstream("a", {"m1"}), upstream("b", {json::object{{"g", "x"}}}, {{"weight", 0}})}) ==
               p + "upstreams[1].weight: 0 on every upstream serving the model \"g\": its lines could never be sent");
    BOOST_TEST(refusal({upstream("a", {"m1"}), upstream("b", {"*"}, {{"weight", 0}})}) ==
               p + "upstreams[1].weight: 0 on every upstream serving \"*\": its lines could never be sent");
    // ... but not when another upstream serves it with a weight, by name or by "*".
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"weight", 0}}), upstream("b", {"*"})}) == "");
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"weight", 0}}), upstream("b", {"m1"})}) == "");
    BOOST_TEST(refusal({upstream("a", {"m1"})}, {{"cooldown_initial_ms", 500}, {"cooldown_max_ms", 100}}) ==
               p + "cooldown_max_ms: must be >= cooldown_initial_ms");
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"max_concurrency", 4}, {"min_concurrency", 5}})}) ==
               p + "upstreams[0].min_concurrency: must not exceed max_concurrency (4)");
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"min_concurrency", 0}})}).starts_with(p + "upstreams[0].min_concurrency: "));
    BOOST_TEST(refusal({upstream("a", {"m1"}, {{"latency_target_ms", -1}})}) ==
               p + "upstreams[0].latency_target_ms: expected a non-negative integer");
    BOOST_TEST(refusal({upstream("a", {"m1"})}, {{"failures_before_cooldown", 0}}) ==
               p + "failures_before_cooldown: must be between 1 and 1000");
}

BOOST_AUTO_TEST_CASE(with_model_replaces_only_the_top_level_model_value) {
    using batches::with_model;
    BOOST_TEST(with_model(R"({"model":"a","x":1})", "Qwen/Q") == R"({"model":"Qwen/Q","x":1})");
    // Whitespace, member order, escapes and number spellings elsewhere stay as written.
    BOOST_TEST(with_model("{ \"messages\" : [{\"model\":\"nested\",\"content\":\"a\\\"}b\"}],\n\t\"model\" :  \"gpt\" , \"n\":1.50e0 }",
                          "Q") ==
               "{ \"messages\" : [{\"model\":\"nested\",\"content\":\"a\\\"}b\"}],\n\t\"model\" :  \"Q\" , \"n\":1.50e0 }");
    // The key as the validator reads it, escapes included; the new name is JSON-escaped.
    BOOST_TEST(with_model(R"({"mod\u0065l":"a"})", "q\"x") == R"({"mod\u0065l":"q\"x"})");
    BOOST_TEST(with_model(R"({"tools":{"model":"t"},"model":"a"})", "b") == R"({"tools":{"model":"t"},"model":"b"})");
    BOOST_TEST(with_model(R"({"user":"u"})", "b") == R"({"user":"u"})");
    BOOST_TEST(with_model(R"({"m\u00f6del":"a","model":"c"})", "b") == R"({"m\u00f6del":"a","model":"b"})");
    BOOST_TEST(with_model("{}", "b") == "{}");
}

BOOST_AUTO_TEST_CASE(lines_go_to_the_least_loaded_upstream_relative_to_weight_and_capacity) {
    // Weights 3 and 1, equal max_concurrency: A A A B, over and over (ties go to A).
    pool_env w(config_of({upstream("A", {"m"}, {{"weight", 3}, {"max_concurrency", 64}}),
                          upstream("B", {"m"}, {{"max_concurrency", 64}})}));
    BOOST_TEST(w.picks("m", 12) == "AAABAAABAAAB");
    BOOST_TEST(w.pool.room("m", 0) == 2u * 64 + 2 * 64 - 12);
    // Equal weights, max_concurrency 8 and 2: capacity 4:1; each takes at most 2 x max_concurrency,
    // then the least loaded one in rotation still takes a line (one of another model's batch).
    pool_env c(config_of({upstream("A", {"m"}, {{"max_concurrency", 8}}), upstream("B", {"m"}, {{"max_concurrency", 2}})}));
    BOOST_TEST(c.picks("m", 20) == "AAAABAAAABAAAABAAAAB");
    BOOST_TEST(c.pool.room("m", 0) == 0u);
    BOOST_TEST(c.picks("m", 5) == "AAAAB");
    // Load that finished elsewhere moves the choice: the less loaded one wins.
    pool_env l(config_of({upstream("A", {"m"}), upstream("B", {"m"})}));
    l.load = {5, 2};
    BOOST_TEST(l.picks("m", 4) == "BBBA");
    // Only upstreams serving the model, and `avoid` only when nothing else can take the line.
    pool_env m(config_of({upstream("A", {"m"}), upstream("B", {"m", "n"}), upstream("C", {"n"})}));
    BOOST_TEST(m.picks("n", 4) == "BCBC");
    BOOST_TEST(m.pool.pick("m", 0, 0)->index == 1u);
    BOOST_TEST(m.pool.pick("m", 0, 1)->index == 0u);
    pool_env one(config_of({upstream("A", {"m"})}));
    BOOST_TEST(one.pool.pick("m", 0, 0)->index == 0u);
    BOOST_TEST(!one.pool.pick("x", 0));
    // A weight of 0 takes nothing; an alias is sent under the upstream's name.
    pool_env a(config_of({upstream("A", {json::object{{"gpt", "Qwen"}}}), upstream("B", {"gpt"}, {{"weight", 0}})}));
    auto choice = a.pool.pick("gpt", 0);
    BOOST_TEST(choice->index == 0u);
    BOOST_TEST(choice->model == "Qwen");
    BOOST_TEST(!choice->probe);
    BOOST_TEST(a.picks("gpt", 3) == "AAA");
}

BOOST_AUTO_TEST_CASE(failures_in_a_row_take_an_upstream_out_and_a_probe_brings_it_back) {
    // A fixed cap (min_concurrency = max_concurrency): no adaptive decrease, so a 503 is a failure
    // like any 5xx. How a 503 above the floor is treated is pinned in the AIMD case below.
    json::object fixed{{"max_concurrency", 2}, {"min_concurrency", 2}};
    pool_env p(config_of({upstream("A", {"m"}, fixed), upstream("B", {"m"}, fixed)},
                         {{"failures_before_cooldown", 3}, {"cooldown_initial_ms", 1000}, {"cooldown_max_ms", 3000}}));
    auto& pool = p.pool;
    auto last_log = [&] { return p.fh.log().empty() ? std::string() : p.fh.log().back(); };
    long long t = 1'000'000;
    // Two failures, a success (any answer below 500, 429 included), two failures: still in.
    pool.observe(0, no_answer("connection_error"), {}, t);
    pool.observe(0, answer(503), {}, t);
    pool.observe(0, answer(429), {}, t);
    pool.observe(0, answer(500), {}, t);
    pool.observe(0, no_answer("timeout"), {}, t);
    BOOST_TEST(pool.in_rotation(0));
    BOOST_TEST(p.fh.log().empty());
    pool.observe(0, answer(502), {}, t);  // the third in a row
    BOOST_TEST(!pool.in_rotation(0));
    BOOST_TEST(last_log() ==
               "batches: upstream A out of rotation for 1000 ms (3 failed attempts in a row, the last: HTTP 502); a probe follows");
    // Out of rotation: only B takes lines; answers to requests sent before do not count.
    BOOST_TEST(pool.room("m", t) == 4u);
    BOOST_TEST(p.picks("m", 2, t) == "BB");
    pool.observe(0, answer(200), {}, t + 10);
    BOOST_TEST(!pool.in_rotation(0));
    BOOST_TEST(pool.room("m", t + 999) == 2u);
    // Once the cooldown has passed, one line goes to A as the probe, and no other until it answers.
    BOOST_TEST(pool.room("m", t + 1000) == 3u);
    BOOST_TEST(!pool.pick("m", t + 1000, 0)->probe);  // the line that just failed on A is not the probe
    auto probe = pool.pick("m", t + 1000);
    BOOST_TEST(probe->index == 0u);
    BOOST_TEST(probe->probe);
    BOOST_TEST(pool.pick("m", t + 1000)->index == 1u);
    BOOST_TEST(pool.room("m", t + 1000) == 2u);
    // A failed probe doubles the cooldown, up to cooldown_max_ms.
    pool.observe(0, answer(503), {.probe = true}, t + 1100);
    BOOST_TEST(last_log() == "batches: upstream A out of rotation for 2000 ms (the probe failed: HTTP 503); a probe follows");
    BOOST_TEST(pool.room("m", t + 3099) == 2u);
    BOOST_TEST(pool.pick("m", t + 3100)->probe);
    pool.observe(0, no_answer("connection_error"), {.probe = true}, t + 3100);
    BOOST_TEST(last_log() ==
               "batches: upstream A out of rotation for 3000 ms (the probe failed: connection_error); a probe follows");
    // A probe that was never sent (its batch was cancelled while it waited) leaves a probe due.
    BOOST_TEST(pool.pick("m", t + 6100)->probe);
    batches::upstream_reply unsent;
    unsent.started = false;
    pool.observe(0, unsent, {.probe = true}, t + 6200);
    BOOST_TEST(!pool.in_rotation(0));
    BOOST_TEST(pool.pick("m", t + 6200)->probe);
    pool.observe(0, answer(200), {.probe = true}, t + 6300);
    BOOST_TEST(pool.in_rotation(0));
    BOOST_TEST(last_log() == "batches: upstream A back in rotation (the probe answered HTTP 200)");
    // Back in rotation, the cooldown starts over at cooldown_initial_ms.
    for (int i = 0; i < 3; ++i) pool.observe(0, answer(500), {}, t + 7000);
    BOOST_TEST(last_log() ==
               "batches: upstream A out of rotation for 1000 ms (3 failed attempts in a row, the last: HTTP 500); a probe follows");
    // Every upstream of the model out: no room and no choice until a probe is due.
    for (int i = 0; i < 3; ++i) pool.observe(1, no_answer("timeout"), {}, t + 7000);
    BOOST_TEST(pool.room("m", t + 7500) == 0u);
    BOOST_TEST(!pool.pick("m", t + 7500));
    BOOST_TEST(pool.room("m", t + 8000) == 2u);
    // A 429's retry-after pauses an upstream: no lines, and no probe, until it has passed.
    pool.pause(0, t + 9000);
    BOOST_TEST(pool.pick("m", t + 8000)->index == 1u);
    BOOST_TEST(!pool.pick("m", t + 8000));
    BOOST_TEST(pool.room("m", t + 8999) == 0u);
    BOOST_TEST(pool.pick("m", t + 9000)->probe);
}

BOOST_AUTO_TEST_CASE(the_cap_halves_on_overload_once_per_round_trip_and_grows_by_one_per_full_window) {
    pool_env p(config_of({upstream("A", {"m"}, {{"max_concurrency", 8}, {"min_concurrency", 2}, {"latency_target_ms", 100}})},
                         {{"failures_before_cooldown", 3}, {"cooldown_initial_ms", 1000}}));
    auto& pool = p.pool;
    const long long t = 1'000'000;
    auto send = [&](int n) {
        std::vector<batches::upstream_choice> v;
        for (int i = 0; i < n; ++i) {
            v.push_back(*pool.pick("m", t));
            ++p.load[0];
        }
        return v;
    };
    auto reply = [&](const batches::upstream_choice& c, batches::upstream_reply r, long long latency_ms = 10) {
        --p.load[0];
        pool.observe(c.index, r, {c.probe, c.epoch, latency_ms}, t);
    };
    auto logs = [&] { return p.fh.log(); };
    using strings = std::vector<std::string>;

    // At max_concurrency the bound is 2 x max_concurrency, as without adaptation.
    BOOST_TEST(pool.cap(0) == 8u);
    BOOST_TEST(pool.room("m", t) == 16u);
    auto f0 = send(8);
    // The flight's first 503 halves the cap; its other refusals, sent at the old cap, do not,
    // and a 503 above the floor is no failure: three in a row leave A in rotation.
    reply(f0[0], answer(503));
    BOOST_TEST(pool.cap(0) == 4u);
    BOOST_TEST(logs() == strings{"batches: upstream A concurrency cap 8 -> 4 (HTTP 503)"});
    BOOST_TEST(pool.room("m", t) == 0u);  // below max_concurrency, the bound is the cap: 7 held
    for (int i = 1; i <= 3; ++i) reply(f0[i], answer(503));
    BOOST_TEST(pool.cap(0) == 4u);
    BOOST_TEST(pool.in_rotation(0));
    reply(f0[4], answer(200));  // an old flight's success counts for nothing either
    BOOST_TEST(pool.room("m", t) == 1u);
    // A line of the new epoch refused while the old flight still holds the upstream: no decrease
    // until every line sent before the last one has answered.
    auto f1 = send(1);
    BOOST_TEST(f1[0].epoch == f0[0].epoch + 1);
    reply(f1[0], answer(503));
    BOOST_TEST(pool.cap(0) == 4u);
    for (int i = 5; i <= 7; ++i) reply(f0[i], answer(200));
    BOOST_TEST(pool.room("m", t) == 4u);

    // +1 after a cap's worth (4) of successes within latency_target_ms, the upstream full once.
    auto f2 = send(4);
    reply(f2[0], answer(200), 101);  // beyond the target: not counted
    for (int i = 1; i <= 3; ++i) reply(f2[i], answer(200), 100);
    BOOST_TEST(pool.cap(0) == 4u);
    reply(send(1)[0], answer(200));
    BOOST_TEST(pool.cap(0) == 5u);
    // Never full (one line at a time): a window of successes does not raise it.
    for (int i = 0; i < 10; ++i) reply(send(1)[0], answer(200));
    BOOST_TEST(pool.cap(0) == 5u);
    BOOST_TEST(logs().size() == 1u);  // an increase below max_concurrency is not logged

    // A timeout halves it too (5 / 2 = 2, the floor), and counts as a failure as before.
    reply(send(1)[0], no_answer("timeout"));
    BOOST_TEST(pool.cap(0) == 2u);
    BOOST_TEST(logs().back() == "batches: upstream A concurrency cap 5 -> 2 (timeout)");
    // At the floor there is nothing left to shed: a 503 is a failure like a 500 (a 429 is not:
    // it clears the count), and three in a row take A out.
    auto f3 = send(3);
    reply(f3[0], answer(503));
    reply(f3[1], answer(429));
    reply(f3[2], answer(503));
    BOOST_TEST(pool.in_rotation(0));
    BOOST_TEST(pool.cap(0) == 2u);
    for (const auto& c : send(2)) reply(c, answer(503));
    BOOST_TEST(!pool.in_rotation(0));
    BOOST_TEST(logs().size() == 3u);
    BOOST_TEST(logs().back() ==
               "batches: upstream A out of rotation for 1000 ms (3 failed attempts in a row, the last: HTTP 503); a probe follows");

    // The cap weighs in the choice: A at cap 4 and B at 8 share lines 1:2 (ties to A).
    pool_env w(config_of({upstream("A", {"m"}, {{"max_concurrency", 8}}), upstream("B", {"m"}, {{"max_concurrency", 8}})}));
    auto a = w.pool.pick("m", t, 1);
    BOOST_TEST(a->index == 0u);
    w.pool.observe(0, answer(429), {false, a->epoch, 10}, t);
    BOOST_TEST(w.pool.cap(0) == 4u);
    BOOST_TEST(w.picks("m", 8, t) == "BABBABBA");
    BOOST_TEST(w.fh.log() == strings{"batches: upstream A concurrency cap 8 -> 4 (HTTP 429)"});

    // Back at max_concurrency is logged, and the bound is 2 x max_concurrency again.
    pool_env b(config_of({upstream("B", {"m"}, {{"max_concurrency", 2}})}));
    auto c0 = b.pool.pick("m", t);
    b.pool.observe(0, answer(503), {false, c0->epoch, 10}, t);
    BOOST_TEST(b.pool.cap(0) == 1u);
    BOOST_TEST(b.pool.room("m", t) == 1u);
    auto c1 = b.pool.pick("m", t);
    b.pool.observe(0, answer(200), {false, c1->epoch, 5000}, t);  // no latency target: any success
    BOOST_TEST(b.pool.cap(0) == 2u);
    BOOST_TEST(b.pool.room("m", t) == 4u);
    strings expected{"batches: upstream B concurrency cap 2 -> 1 (HTTP 503)",
                     "batches: upstream B concurrency cap back at max_concurrency 2"};
    BOOST_TEST(b.fh.log() == expected);
}

BOOST_AUTO_TEST_CASE(rate_limits_refuse_zero_and_negative_values_naming_the_key) {
    BOOST_TEST(refusal({upstream("A", {"m"}, {{"max_requests_per_minute", 0}})}) ==
               "plugins.batches.upstreams[0].max_requests_per_minute: must be between 1 and 1000000000");
    BOOST_TEST(refusal({upstream("A", {"m"}, {{"max_tokens_per_minute", -5}})}) ==
               "plugins.batches.upstreams[0].max_tokens_per_minute: expected a non-negative integer");
    BOOST_TEST(refusal({upstream("A", {"m"}, {{"max_tokens_per_minute", 0}})}) ==
               "plugins.batches.upstreams[0].max_tokens_per_minute: must be between 1 and 1000000000000");
    BOOST_TEST(refusal({upstream("A", {"m"}, {{"max_requests_per_minute", "600"}})}) ==
               "plugins.batches.upstreams[0].max_requests_per_minute: expected a non-negative integer");
    auto c = config_of({upstream("A", {"m"}, {{"max_requests_per_minute", 600}, {"max_tokens_per_minute", 90000}}),
                        upstream("B", {"m"})});
    BOOST_TEST(c.upstreams[0].max_requests_per_minute == 600u);
    BOOST_TEST(c.upstreams[0].max_tokens_per_minute == 90000u);
    BOOST_TEST(c.upstreams[1].max_requests_per_minute == 0u);  // absent: unlimited
    BOOST_TEST(c.upstreams[1].max_tokens_per_minute == 0u);
}

BOOST_AUTO_TEST_CASE(a_bucket_starts_full_at_200_ms_worth_refills_by_the_millisecond_and_never_grants_more) {
    // 600 requests a minute: 10 a second, a burst (capacity) of 2; 6000 tokens a minute: 100 a
    // second, a burst of 20.
    const batches::bucket_limits lim{600, 6000};
    batches::bucket_level b;
    const long long t = 1'000'000;
    auto g = batches::draw_from(b, lim, t, 5, 10);
    BOOST_TEST(g.requests == 2);  // the full bucket, not the 5 asked for
    BOOST_TEST(g.tokens == 10);
    BOOST_TEST(g.retry_in_ms == 100);  // the next whole request
    BOOST_TEST(b.requests_milli == 0);
    BOOST_TEST(b.tokens_milli == 10'000);
    // 50 ms later: half a request, nothing granted (tokens neither: both or none).
    g = batches::draw_from(b, lim, t + 50, 1, 5);
    BOOST_TEST(g.requests == 0);
    BOOST_TEST(g.tokens == 0);
    BOOST_TEST(g.retry_in_ms == 50);
    BOOST_TEST(b.requests_milli == 500);
    // Never more than the bucket holds: 20 tokens of the 70 asked for (the host's balance may go
    // into debt for a big line; the bucket does not).
    g = batches::draw_from(b, lim, t + 100, 1, 70);
    BOOST_TEST(g.requests == 1);
    BOOST_TEST(g.tokens == 20);
    BOOST_TEST(b.tokens_milli == 0);
    BOOST_TEST(g.retry_in_ms == 100);  // both kinds are needed: the next request is the later
    g = batches::draw_from(b, lim, t + 200, 3, 70);
    BOOST_TEST(g.requests == 1);
    BOOST_TEST(g.tokens == 10);
    BOOST_TEST(b.requests_milli == 0);
    BOOST_TEST(b.tokens_milli == 0);
    // Over any span, what was granted stays within the burst plus the rate: drawing a request
    // every millisecond for 10 s grants 2 + 100.
    batches::bucket_level r;
    long long granted = 0;
    for (long long ms = 0; ms <= 10'000; ++ms) granted += batches::draw_from(r, {600, 0}, t + ms, 1, 0).requests;
    BOOST_TEST(granted == 102);
    // An unlimited kind is granted whole and its level left alone.
    batches::bucket_level u;
    g = batches::draw_from(u, {0, 0}, t, 7, 9);
    BOOST_TEST(g.requests == 7);
    BOOST_TEST(g.tokens == 9);
    BOOST_TEST(g.retry_in_ms == 0);
}

BOOST_AUTO_TEST_CASE(a_rate_share_allows_what_was_drawn_lapses_after_200_ms_and_keeps_a_token_debt) {
    batches::rate_allowance a({600, 6000});
    const long long t = 1'000'000;
    BOOST_TEST(a.limited());
    BOOST_TEST(a.room(t) == 0u);
    BOOST_TEST(a.draw_due(t));
    BOOST_TEST(a.want_requests() == 2);   // 200 ms of 10 a second
    BOOST_TEST(a.want_tokens() == 20);    // 200 ms of 100 a second
    a.add({2, 20, 0}, t);
    BOOST_TEST(!a.draw_due(t));
    // Tokens counted at the average estimate (256 until lines were spent): one line's worth.
    BOOST_TEST(a.room(t) == 1u);
    a.spend(50);  // an estimate of 50: 30 tokens of debt
    BOOST_TEST(a.room(t) == 0u);
    BOOST_TEST(a.want_tokens() == 20);    // a share at a time, debt or not
    // The reply used 12: 38 given back, 8 left.
    a.correct(50, 12);
    BOOST_TEST(a.room(t + 199) == 1u);
    BOOST_TEST(a.room(t + 200) == 0u);  // lapsed
    a.spend(40);
    a.add({1, 52, 0}, t + 300);  // a lapsed share's 8 tokens and 1 request went; the debt of 32 stays
    BOOST_TEST(a.room(t + 300) == 1u);
    a.spend(20);
    BOOST_TEST(a.room(t + 300) == 0u);  // the request is spent
    // A short grant waits for the bucket's answer before the next draw.
    a.add({0, 0, 80}, t + 400);
    BOOST_TEST(!a.draw_due(t + 479));
    BOOST_TEST(a.draw_due(t + 480));
    // A line counts for at most a minute of the limit (6000), its correction too.
    batches::rate_allowance big({0, 6000});
    big.add({0, 20, 0}, t);
    big.spend(1'000'000);
    BOOST_TEST(big.room(t) == 0u);
    BOOST_TEST(big.want_tokens() == 20);
    big.correct(1'000'000, 0);  // refused: the whole estimate back
    BOOST_TEST(big.room(t) == 1u);
    // No limits: always allowed, never drawn.
    batches::rate_allowance none;
    BOOST_TEST(!none.limited());
    BOOST_TEST(none.allows(t));
    BOOST_TEST(!none.draw_due(t));
}

BOOST_AUTO_TEST_CASE(tokens_are_estimated_from_the_prompt_bytes_and_the_completion_limit) {
    // Every string value of the messages: "system" "sys" "user" "text" "hello world!", 29 bytes,
    // 8 tokens (rounded up); plus max_tokens. The model name is not prompt.
    BOOST_TEST(batches::estimate_tokens("/v1/chat/completions",
                                        R"({"model":"m","messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hello world!"}]}],"max_tokens":100})") ==
               8 + 100);
    BOOST_TEST(batches::estimate_tokens("/v1/chat/completions", R"({"messages":[],"max_completion_tokens":7,"max_tokens":9})") == 7);
    BOOST_TEST(batches::estimate_tokens("/v1/completions", R"({"prompt":"abcdefgh"})") ==
               2 + batches::default_completion_tokens);
    BOOST_TEST(batches::estimate_tokens("/v1/responses", R"({"input":"abcde","instructions":"xyz","max_output_tokens":10})") ==
               2 + 10);
    BOOST_TEST(batches::estimate_tokens("/v1/embeddings", R"({"input":["abcd","efgh"]})") == 2);
    // What a body may not make it: negative, or past 10^12 (no overflow with a huge value).
    BOOST_TEST(batches::estimate_tokens("/v1/completions", R"({"prompt":"abcd","max_tokens":-5})") == 1);
    BOOST_TEST(batches::estimate_tokens("/v1/completions", R"({"prompt":"abcd","max_tokens":18446744073709551615})") ==
               1 + 1'000'000'000'000);
    BOOST_TEST(batches::estimate_tokens("/v1/completions", R"({"prompt":"abcd","max_tokens":"100"})") ==
               1 + batches::default_completion_tokens);  // not a number: the default
    BOOST_TEST(batches::estimate_tokens("/v1/chat/completions", "not json") == batches::default_completion_tokens);
}

BOOST_AUTO_TEST_CASE(an_upstream_out_of_rate_budget_takes_no_line_even_past_its_bound) {
    pool_env p(config_of({upstream("A", {"m"}, {{"max_requests_per_minute", 600}}), upstream("B", {"m"}, {{"weight", 1}})}));
    auto& pool = p.pool;
    const long long t = 1'000'000;
    // A has no share yet: everything goes to B.
    BOOST_TEST(p.picks("m", 3, t) == "BBB");
    BOOST_TEST(pool.room("m", t) == 128u - 3u);
    pool.rate(0).add({2, 0, 0}, t);
    BOOST_TEST(pool.room("m", t) == 128u - 3u + 2u);
    // A is the least loaded now: it takes its 2, then B again.
    BOOST_TEST(p.picks("m", 4, t) == "AABB");
    // With B out of the way too, a line finds no upstream rather than going past A's budget.
    p.load[1] = 1000;
    pool.pause(1, t + 1000);
    BOOST_TEST(!pool.pick("m", t));
    pool.rate(0).add({1, 0, 0}, t + 10);
    BOOST_TEST(pool.pick("m", t + 10)->index == 0u);
}
