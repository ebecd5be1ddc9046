#include "config.hpp"

#include "webhook_signature.hpp"

#include "sql/legacy_owner.hpp"
#include "sql/pool.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <stdexcept>

namespace batches {

namespace json = boost::json;

std::optional<std::string_view> upstream_config::upstream_model(std::string_view model) const {
    if (auto it = aliases.find(model); it != aliases.end()) return std::string_view(it->second);
    for (const auto& m : models)
        if (m == "*" || m == model) return model;
    return std::nullopt;
}

bool webhook_endpoint::wants(std::string_view owner, std::string_view event_type) const {
    return (owners.empty() || owners.contains(owner)) && (events.empty() || events.contains(event_type));
}

bool config::served(std::string_view model) const {
    for (const auto& u : upstreams)
        if (u.weight > 0 && u.upstream_model(model)) return true;
    return false;
}

namespace {

[[noreturn]] void fail(const std::string& key, const std::string& what) {
    throw std::invalid_argument("plugins.batches." + key + ": " + what);
}

std::uint64_t get_uint(const json::value& v, const std::string& key, std::uint64_t min, std::uint64_t max) {
    std::uint64_t n = 0;
    if (v.is_uint64()) n = v.as_uint64();
    else if (v.is_int64() && v.as_int64() >= 0) n = static_cast<std::uint64_t>(v.as_int64());
    else fail(key, "expected a non-negative integer");
    if (n < min || n > max)
        fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
}

std::string get_string(const json::value& v, const std::string& key) {
    if (!v.is_string()) fail(key, "expected a string");
    return std::string(v.as_string());
}

// `models`: names ("*": every model) and alias objects {"public name": "upstream's name", ...}.
// A public name given twice on one upstream is refused, also when both say the same: one of
// them is a mistake the operator should see, and two different targets would be a coin toss.
void parse_models(const json::value& v, const std::string& key, upstream_config& u) {
    if (!v.is_array()) fail(key, "expected an array of model names, \"*\" or {\"public name\": \"upstream name\"}");
    std::set<std::string, std::less<>> seen;
    auto name_once = [&](std::string_view name, const std::string& where) {
        if (!seen.emplace(name).second) fail(where, "names the model \"" + std::string(name) + "\" twice on this upstream");
    };
    std::size_t j = 0;
    for (const auto& m : v.as_array()) {
        std::string where = key + "[" + std::to_string(j++) + "]";
        if (m.is_string()) {
            if (m.as_string().empty()) fail(where, "expected a non-empty model name");
            name_once(m.as_string(), where);
            u.models.emplace_back(m.as_string());
        } else if (m.is_object()) {
            if (m.as_object().empty()) fail(where, "expected at least one alias {\"public name\": \"upstream name\"}");
            for (const auto& [pub, target] : m.as_object()) {
                std::string at = where + "." + std::string(pub);
                if (pub.empty() || pub == "*") fail(at, "an alias needs a public model name (not \"*\")");
                if (!target.is_string() || target.as_string().empty())
                    fail(at, "expected the upstream's model name (a non-empty string)");
                name_once(pub, at);
                u.aliases.emplace(std::string(pub), std::string(target.as_string()));
            }
        } else {
            fail(where, "expected a model name or {\"public name\": \"upstream name\"}");
        }
    }
}

// Every model some upstream names (and "*", for the models no one names) must keep an
// upstream with a weight above 0: otherwise its batches would be accepted and never run.
void check_weights(const std::vector<upstream_config>& ups) {
    std::set<std::string, std::less<>> names;
    for (const auto& u : ups) {
        names.insert(u.models.begin(), u.models.end());
        for (const auto& [pub, target] : u.aliases) names.insert(pub);
    }
    for (const auto& name : names) {
        const upstream_config* zero = nullptr;
        std::size_t zero_index = 0;
        bool weighted = false;
        for (std::size_t i = 0; i < ups.size(); ++i) {
            bool serves = name == "*" ? std::find(ups[i].models.begin(), ups[i].models.end(), "*") != ups[i].models.end()
                                      : ups[i].upstream_model(name).has_value();
            if (!serves) continue;
            if (ups[i].weight > 0) weighted = true;
            else if (!zero) zero = &ups[i], zero_index = i;
        }
        if (!weighted && zero)
            fail("upstreams[" + std::to_string(zero_index) + "].weight",
                 "0 on every upstream serving " + (name == "*" ? std::string("\"*\"") : "the model \"" + name + "\"") +
                     ": its lines could never be sent");
    }
}

upstream_config parse_upstream(const json::value& v, const std::string& key) {
    if (!v.is_object()) fail(key, "expected an object");
    upstream_config u;
    bool has_models = false;
    for (const auto& [k, val] : v.as_object()) {
        std::string sub = key + "." + std::string(k);
        if (k == "name") u.name = get_string(val, sub);
        else if (k == "base_url") u.base_url = get_string(val, sub);
        else if (k == "api_key") u.api_key = get_string(val, sub);
        else if (k == "models") {
            has_models = true;
            parse_models(val, sub, u);
        } else if (k == "max_concurrency") u.max_concurrency = static_cast<unsigned>(get_uint(val, sub, 1, 100000));
        else if (k == "timeout_seconds") u.timeout_seconds = static_cast<unsigned>(get_uint(val, sub, 1, 86400));
        else if (k == "weight") u.weight = static_cast<unsigned>(get_uint(val, sub, 0, 1000));
        else if (k == "min_concurrency") u.min_concurrency = static_cast<unsigned>(get_uint(val, sub, 1, 100000));
        else if (k == "latency_target_ms")
            u.latency_target_ms = static_cast<unsigned>(get_uint(val, sub, 0, 86400000));
        else if (k == "max_requests_per_minute") u.max_requests_per_minute = get_uint(val, sub, 1, 1'000'000'000);
        else if (k == "max_tokens_per_minute") u.max_tokens_per_minute = get_uint(val, sub, 1, 1'000'000'000'000);
        else fail(sub, "unknown key");
    }
    if (u.min_concurrency > u.max_concurrency)
        fail(key + ".min_concurrency", "must not exceed max_concurrency (" + std::to_string(u.max_concurrency) + ")");
    if (u.name.empty()) fail(key + ".name", "required");
    if (!has_models || (u.models.empty() && u.aliases.empty())) fail(key + ".models", "required: model names or \"*\"");
    while (!u.base_url.empty() && u.base_url.back() == '/') u.base_url.pop_back();
    bool http = u.base_url.starts_with("http://"), https = u.base_url.starts_with("https://");
    if (!http && !https) fail(key + ".base_url", "must start with http:// or https://");
    if (!u.base_url.ends_with("/v1")) fail(key + ".base_url", "must end with /v1");
    return u;
}

// The events a batch can end with, as OpenAI names them.
constexpr std::string_view batch_events[] = {"batch.completed", "batch.failed", "batch.expired", "batch.cancelled"};

std::set<std::string, std::less<>> get_string_set(const json::value& v, const std::string& key,
                                                  const std::function<bool(std::string_view)>& valid,
                                                  const char* expected) {
    if (!v.is_array() || v.as_array().empty()) fail(key, std::string("expected a non-empty array of ") + expected);
    std::set<std::string, std::less<>> out;
    for (const auto& item : v.as_array()) {
        if (!item.is_string() || !valid(item.as_string())) fail(key, std::string("expected ") + expected);
        if (!out.emplace(item.as_string()).second) fail(key, "\"" + std::string(item.as_string()) + "\" is listed twice");
    }
    return out;
}

webhook_endpoint parse_webhook(const json::value& v, const std::string& key) {
    if (!v.is_object()) fail(key, "expected an object {url, secret, owners?, events?}");
    webhook_endpoint w;
    bool has_secret = false;
    for (const auto& [k, val] : v.as_object()) {
        std::string sub = key + "." + std::string(k);
        if (k == "url") w.url = get_string(val, sub);
        else if (k == "secret") {
            has_secret = true;
            // The message never quotes the value: it is a secret.
            auto decoded = val.is_string() ? decode_webhook_secret(val.as_string()) : std::nullopt;
            if (!decoded) fail(sub, "expected \"whsec_\" followed by base64");
            if (decoded->size() < 16) fail(sub, "the key must be at least 16 bytes (24 base64 characters)");
            w.key = std::move(*decoded);
        } else if (k == "owners") {
            w.owners = get_string_set(val, sub, [](std::string_view o) {
                auto name = o.starts_with("user:") ? o.substr(5) : o.starts_with("team:") ? o.substr(5) : std::string_view();
                return !name.empty();
            }, "owner keys (\"user:NAME\" or \"team:NAME\")");
        } else if (k == "events") {
            w.events = get_string_set(val, sub, [](std::string_view e) {
                return std::find(std::begin(batch_events), std::end(batch_events), e) != std::end(batch_events);
            }, "event types (batch.completed, batch.failed, batch.expired, batch.cancelled)");
        } else fail(sub, "unknown key");
    }
    bool http = w.url.starts_with("http://"), https = w.url.starts_with("https://");
    if (!http && !https) fail(key + ".url", "required: an http:// or https:// URL");
    std::string_view rest = std::string_view(w.url).substr(https ? 8 : 7);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    if (authority.empty() || authority.find('@') != std::string_view::npos)
        fail(key + ".url", "must name a host (and no user information)");
    for (char c : w.url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#')
            fail(key + ".url", "must not contain spaces, control characters or a fragment");
    // The client sends base_url's path as the request target: "http://h?x" is "http://h/?x".
    if (rest.size() == authority.size() || rest[authority.size()] == '?')
        w.url.insert(w.url.size() - (rest.size() - authority.size()), "/");
    if (!has_secret) fail(key + ".secret", "required (\"whsec_\" + base64, usually ${ENV})");
    return w;
}

}  // namespace

config parse_config(const json::object& section) {
    config c;
    bool has_upstreams = false;
    for (const auto& [k, v] : section) {
        std::string key(k);
        constexpr auto u32 = std::numeric_limits<std::uint32_t>::max();
        if (key == "enabled" || key == "requires") continue;  // the host's keys
        else if (key == "database") c.database = get_string(v, key);
        else if (key == "upstreams") {
            has_upstreams = true;
            if (!v.is_array()) fail(key, "expected an array");
            std::size_t i = 0;
            for (const auto& u : v.as_array()) {
                c.upstreams.push_back(parse_upstream(u, key + "[" + std::to_string(i++) + "]"));
                for (std::size_t j = 0; j + 1 < c.upstreams.size(); ++j)
                    if (c.upstreams[j].name == c.upstreams.back().name)
                        fail(key + "[" + std::to_string(i - 1) + "].name", "duplicate upstream name");
            }
        } else if (key == "max_attempts") c.max_attempts = static_cast<unsigned>(get_uint(v, key, 1, 100));
        else if (key == "backoff_initial_ms") c.backoff_initial_ms = static_cast<unsigned>(get_uint(v, key, 0, u32));
        else if (key == "backoff_max_ms") c.backoff_max_ms = static_cast<unsigned>(get_uint(v, key, 0, u32));
        else if (key == "max_active_batches_per_owner")
            c.max_active_batches_per_owner = static_cast<unsigned>(get_uint(v, key, 1, u32));
        else if (key == "max_requests_per_batch") c.max_requests_per_batch = get_uint(v, key, 1, 10'000'000);
        else if (key == "max_input_bytes") c.max_input_bytes = get_uint(v, key, 1, 1ull << 40);
        else if (key == "max_line_bytes") c.max_line_bytes = get_uint(v, key, 1024, 1ull << 30);
        else if (key == "poll_interval_ms") c.poll_interval_ms = static_cast<unsigned>(get_uint(v, key, 1, 3'600'000));
        else if (key == "max_in_flight") c.max_in_flight = static_cast<unsigned>(get_uint(v, key, 1, 1'000'000));
        else if (key == "output_expires_after_seconds")
            c.output_expires_after_seconds = static_cast<std::int64_t>(get_uint(v, key, 3600, 2592000));
        else if (key == "completion_window_seconds")
            c.completion_window_seconds = static_cast<long long>(get_uint(v, key, 1, 7 * 86400));
        else if (key == "lease_seconds") c.lease_seconds = static_cast<unsigned>(get_uint(v, key, 1, 86400));
        else if (key == "max_retry_after_seconds")
            c.max_retry_after_seconds = static_cast<unsigned>(get_uint(v, key, 0, 86400));
        else if (key == "results_retention_seconds")
            c.results_retention_seconds = static_cast<long long>(get_uint(v, key, 0, 10 * 365 * 86400ull));
        else if (key == "batch_retention_seconds")
            c.batch_retention_seconds = static_cast<long long>(get_uint(v, key, 1, 10 * 365 * 86400ull));
        else if (key == "failures_before_cooldown")
            c.failures_before_cooldown = static_cast<unsigned>(get_uint(v, key, 1, 1000));
        else if (key == "cooldown_initial_ms") c.cooldown_initial_ms = static_cast<unsigned>(get_uint(v, key, 1, 3'600'000));
        else if (key == "cooldown_max_ms") c.cooldown_max_ms = static_cast<unsigned>(get_uint(v, key, 1, 3'600'000));
        else if (key == "pool_size") c.pool_size = static_cast<unsigned>(get_uint(v, key, 2, 1024));
        else if (key == "session_wait_ms") c.session_wait_ms = static_cast<unsigned>(get_uint(v, key, 1, 600000));
        else if (key == "webhooks") {
            if (!v.is_array()) fail(key, "expected an array of {url, secret, owners?, events?}");
            std::size_t i = 0;
            for (const auto& w : v.as_array()) {
                std::string at = key + "[" + std::to_string(i++) + "]";
                c.webhooks.push_back(parse_webhook(w, at));
                for (std::size_t j = 0; j + 1 < c.webhooks.size(); ++j)
                    if (c.webhooks[j].url == c.webhooks.back().url) fail(at + ".url", "the same URL is configured twice");
            }
        } else if (key == "webhook_retry_seconds")
            c.webhook_retry_seconds = static_cast<long long>(get_uint(v, key, 1, 30 * 86400));
        else if (key == "webhook_backoff_initial_ms")
            c.webhook_backoff_initial_ms = static_cast<unsigned>(get_uint(v, key, 1, 86'400'000));
        else if (key == "webhook_backoff_max_ms")
            c.webhook_backoff_max_ms = static_cast<unsigned>(get_uint(v, key, 1, 86'400'000));
        else if (key == "webhook_timeout_seconds")
            c.webhook_timeout_seconds = static_cast<unsigned>(get_uint(v, key, 1, 600));
        else if (key == "legacy_team_owners") {
            try {
                c.legacy_team_owners = aq::sql::legacy_team_owners_from(v);
            } catch (const std::invalid_argument& e) {
                fail(key, e.what());
            }
        }
        else fail(key, "unknown key");
    }
    if (c.database.empty()) fail("database", "required (the host provides its own by default)");
    try {
        if (auto t = aq::sql::parse_url(c.database); !t.file.empty())
            c.scratch_dir = std::filesystem::path(t.file).parent_path().string();
    } catch (const std::invalid_argument& e) {
        fail("database", e.what());
    }
    if (!has_upstreams || c.upstreams.empty()) fail("upstreams", "at least one upstream is required");
    if (c.backoff_max_ms < c.backoff_initial_ms) fail("backoff_max_ms", "must be >= backoff_initial_ms");
    if (c.cooldown_max_ms < c.cooldown_initial_ms) fail("cooldown_max_ms", "must be >= cooldown_initial_ms");
    check_weights(c.upstreams);
    if (c.webhook_backoff_max_ms < c.webhook_backoff_initial_ms)
        fail("webhook_backoff_max_ms", "must be >= webhook_backoff_initial_ms");
    if (c.results_retention_seconds > c.batch_retention_seconds)
        fail("results_retention_seconds", "must be <= batch_retention_seconds (a batch's lines go with it)");
    return c;
}

}  // namespace batches
