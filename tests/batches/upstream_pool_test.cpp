// Upstream pools in-process, without a database: the config of models, aliases and weights (and
// what it refuses), rewriting a body's model byte-exactly, and upstream_pool's choice and health
// rules driven with a load the test sets by hand. The same behaviour through the real aqueductd
// and several fake upstreams is in pool_api_test.cpp.
#define BOOST_TEST_MODULE batches_upstream_pool
#include <boost/test/unit_test.hpp>

#include "fake_files.hpp"

#include "config.hpp"
#include "model_rewrite.hpp"
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
    pool_env p(config_of({upstream("A", {"m"}, {{"max_concurrency", 2}}), upstream("B", {"m"}, {{"max_concurrency", 2}})},
                         {{"failures_before_cooldown", 3}, {"cooldown_initial_ms", 1000}, {"cooldown_max_ms", 3000}}));
    auto& pool = p.pool;
    auto last_log = [&] { return p.fh.log().empty() ? std::string() : p.fh.log().back(); };
    long long t = 1'000'000;
    // Two failures, a success (any answer below 500, 429 included), two failures: still in.
    pool.observe(0, no_answer("connection_error"), false, t);
    pool.observe(0, answer(503), false, t);
    pool.observe(0, answer(429), false, t);
    pool.observe(0, answer(500), false, t);
    pool.observe(0, no_answer("timeout"), false, t);
    BOOST_TEST(pool.in_rotation(0));
    BOOST_TEST(p.fh.log().empty());
    pool.observe(0, answer(502), false, t);  // the third in a row
    BOOST_TEST(!pool.in_rotation(0));
    BOOST_TEST(last_log() ==
               "batches: upstream A out of rotation for 1000 ms (3 failed attempts in a row, the last: HTTP 502); a probe follows");
    // Out of rotation: only B takes lines; answers to requests sent before do not count.
    BOOST_TEST(pool.room("m", t) == 4u);
    BOOST_TEST(p.picks("m", 2, t) == "BB");
    pool.observe(0, answer(200), false, t + 10);
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
    pool.observe(0, answer(503), true, t + 1100);
    BOOST_TEST(last_log() == "batches: upstream A out of rotation for 2000 ms (the probe failed: HTTP 503); a probe follows");
    BOOST_TEST(pool.room("m", t + 3099) == 2u);
    BOOST_TEST(pool.pick("m", t + 3100)->probe);
    pool.observe(0, no_answer("connection_error"), true, t + 3100);
    BOOST_TEST(last_log() ==
               "batches: upstream A out of rotation for 3000 ms (the probe failed: connection_error); a probe follows");
    // A probe that was never sent (its batch was cancelled while it waited) leaves a probe due.
    BOOST_TEST(pool.pick("m", t + 6100)->probe);
    batches::upstream_reply unsent;
    unsent.started = false;
    pool.observe(0, unsent, true, t + 6200);
    BOOST_TEST(!pool.in_rotation(0));
    BOOST_TEST(pool.pick("m", t + 6200)->probe);
    pool.observe(0, answer(200), true, t + 6300);
    BOOST_TEST(pool.in_rotation(0));
    BOOST_TEST(last_log() == "batches: upstream A back in rotation (the probe answered HTTP 200)");
    // Back in rotation, the cooldown starts over at cooldown_initial_ms.
    for (int i = 0; i < 3; ++i) pool.observe(0, answer(500), false, t + 7000);
    BOOST_TEST(last_log() ==
               "batches: upstream A out of rotation for 1000 ms (3 failed attempts in a row, the last: HTTP 500); a probe follows");
    // Every upstream of the model out: no room and no choice until a probe is due.
    for (int i = 0; i < 3; ++i) pool.observe(1, no_answer("timeout"), false, t + 7000);
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
