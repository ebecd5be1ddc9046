// Fuzz target: host/config.cpp, parse_config() with an injected environment.
//
// Input: lines "$NAME=VALUE" (the environment ${NAME} sees), then the config text.
//
// Invariants:
//   - the only exception is config_error, and its message names where ("path: what");
//   - an accepted config respects every documented range and format (README's key table);
//   - each plugin's JSON text is an object holding its "enabled" and "requires" and, when the
//     host has a database, a "database";
//   - an accepted config written back as JSON (a literal "${" escaped as "$${") parses to the
//     same config with an empty environment.
#include "invariant.hpp"

#include "config.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace {

using aqd::config;
using aqd::config_error;
namespace json = boost::json;

const std::filesystem::path config_dir = "/etc/aq";

std::string escaped(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s.substr(i, 2) == "${") out += '$';
        out += s[i];
    }
    return out;
}

// Every string value escaped, as a file meant to be read literally would be written.
void escape_all(json::value& v) {
    if (auto* s = v.if_string()) {
        *s = escaped(*s);
    } else if (auto* o = v.if_object()) {
        for (auto& kv : *o) escape_all(kv.value());
    } else if (auto* a = v.if_array()) {
        for (auto& e : *a) escape_all(e);
    }
}

json::object written_back(const config& c) {
    json::object o;
    // Brackets whenever the parser would take them off: an IPv6 address, or one that starts with '['.
    const bool bracket = c.listen_address.find(':') != std::string::npos || c.listen_address.front() == '[';
    o["listen"] = (bracket ? "[" + c.listen_address + "]" : c.listen_address) + ":" + std::to_string(c.listen_port);
    o["workers"] = c.workers;
    o["io_threads"] = c.io_threads;
    if (!c.database.empty()) o["database"] = c.database;
    if (!c.plugin_dir.empty()) o["plugin_dir"] = c.plugin_dir.string();
    json::array tokens;
    for (const auto& t : c.tokens) {
        json::object to{{"name", t.name}, {"user", t.user}, {"sha256", t.sha256}};
        if (!t.team.empty()) to["team"] = t.team;
        tokens.push_back(std::move(to));
    }
    o["tokens"] = std::move(tokens);
    json::object plugins;
    for (const auto& p : c.plugins) plugins[p.name] = json::parse(p.json);
    o["plugins"] = std::move(plugins);
    o["log_level"] = c.log_level;
    o["max_header_bytes"] = c.max_header_bytes;
    o["header_timeout_ms"] = c.header_timeout_ms;
    o["idle_timeout_ms"] = c.idle_timeout_ms;
    o["body_timeout_ms"] = c.body_timeout_ms;
    o["shutdown_timeout_ms"] = c.shutdown_timeout_ms;
    o["max_drain_bytes"] = c.max_drain_bytes;
    json::value v = std::move(o);
    escape_all(v);
    return std::move(v.as_object());
}

bool same(const config& a, const config& b) {
    if (a.listen_address != b.listen_address || a.listen_port != b.listen_port || a.workers != b.workers ||
        a.io_threads != b.io_threads || a.database != b.database || a.plugin_dir != b.plugin_dir ||
        a.config_dir != b.config_dir || a.log_level != b.log_level || a.max_header_bytes != b.max_header_bytes ||
        a.header_timeout_ms != b.header_timeout_ms || a.idle_timeout_ms != b.idle_timeout_ms ||
        a.body_timeout_ms != b.body_timeout_ms || a.shutdown_timeout_ms != b.shutdown_timeout_ms ||
        a.max_drain_bytes != b.max_drain_bytes || a.tokens.size() != b.tokens.size() || a.plugins.size() != b.plugins.size())
        return false;
    for (std::size_t i = 0; i < a.tokens.size(); ++i) {
        const auto &x = a.tokens[i], &y = b.tokens[i];
        if (x.name != y.name || x.user != y.user || x.team != y.team || x.sha256 != y.sha256) return false;
    }
    for (std::size_t i = 0; i < a.plugins.size(); ++i) {
        const auto &x = a.plugins[i], &y = b.plugins[i];
        if (x.name != y.name || x.enabled != y.enabled || x.requires_ != y.requires_ || x.json != y.json) return false;
    }
    return true;
}

void check_accepted(const config& c) {
    AQ_FUZZ_CHECK(c.workers >= 1 && c.workers <= 4096, std::to_string(c.workers));
    AQ_FUZZ_CHECK(c.io_threads >= 1 && c.io_threads <= 256, std::to_string(c.io_threads));
    AQ_FUZZ_CHECK(c.max_header_bytes >= 1024, std::to_string(c.max_header_bytes));
    AQ_FUZZ_CHECK(c.header_timeout_ms >= 1 && c.idle_timeout_ms >= 1 && c.body_timeout_ms >= 1, "a zero timeout");
    AQ_FUZZ_CHECK(!c.listen_address.empty(), "empty listen address");
    const std::set<std::string> levels{"debug", "info", "warn", "error"};
    AQ_FUZZ_CHECK(levels.count(c.log_level), c.log_level);
    const bool sqlite = c.database.starts_with("sqlite:");
    AQ_FUZZ_CHECK(c.database.empty() || sqlite || c.database.starts_with("postgresql://") ||
                      c.database.starts_with("postgres://"),
                  c.database);
    if (sqlite && c.database != "sqlite::memory:") AQ_FUZZ_CHECK(c.database[7] == '/', c.database);
    AQ_FUZZ_CHECK(c.plugin_dir.empty() || c.plugin_dir.is_absolute(), c.plugin_dir.string());

    std::set<std::string> names, digests;
    for (const auto& t : c.tokens) {
        AQ_FUZZ_CHECK(!t.name.empty() && !t.user.empty() && names.insert(t.name).second, t.name);
        AQ_FUZZ_CHECK(t.sha256.size() == 64 && t.sha256.find_first_not_of("0123456789abcdef") == std::string::npos &&
                          digests.insert(t.sha256).second,
                      t.sha256);
    }
    for (const auto& p : c.plugins) {
        AQ_FUZZ_CHECK(!p.name.empty() && p.name.size() <= 64 &&
                          p.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos,
                      p.name);
        json::error_code ec;
        const json::value v = json::parse(p.json, ec);
        AQ_FUZZ_CHECK(!ec && v.is_object(), "plugin " + p.name + " JSON does not parse: " + p.json);
        const json::object& o = v.get_object();
        const json::value* enabled = o.if_contains("enabled");
        AQ_FUZZ_CHECK(enabled && enabled->is_bool() && enabled->get_bool() == p.enabled, p.json);
        std::vector<std::string> requires_;
        if (const json::value* r = o.if_contains("requires"))
            for (const auto& e : r->as_array()) requires_.emplace_back(e.as_string());
        AQ_FUZZ_CHECK(requires_ == p.requires_, p.json);
        if (!c.database.empty()) AQ_FUZZ_CHECK(o.contains("database"), p.json);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::map<std::string, std::string, std::less<>> vars;
    while (input.starts_with("$")) {
        const auto nl = input.find('\n');
        std::string_view line = input.substr(1, nl == std::string_view::npos ? std::string_view::npos : nl - 1);
        input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
        const auto eq = line.find('=');
        if (eq != std::string_view::npos) vars.emplace(line.substr(0, eq), line.substr(eq + 1));
    }
    const aqd::env_lookup env = [&](std::string_view name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };

    config c;
    try {
        c = aqd::parse_config(input, config_dir, env);
    } catch (const config_error& e) {
        const std::string what = e.what();
        const auto colon = what.find(": ");
        AQ_FUZZ_CHECK(colon != std::string::npos, "error without a key path: " + what);  // "" is a key too
        return 0;
    }
    check_accepted(c);

    const std::string text = json::serialize(written_back(c));
    const aqd::env_lookup no_env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
    config again;
    try {
        again = aqd::parse_config(text, config_dir, no_env);
    } catch (const config_error& e) {
        AQ_FUZZ_CHECK(false, std::string("written back, the config is refused: ") + e.what() + "\n  " + text);
    }
    AQ_FUZZ_CHECK(same(c, again), "written back, the config differs: " + text);
    return 0;
}
