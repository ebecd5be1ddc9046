#include "config.hpp"

#include "ascii.hpp"
#include "log.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace aqd {

unsigned default_io_threads() { return std::clamp(std::thread::hardware_concurrency(), 1u, 4u); }


namespace json = boost::json;

namespace {

std::string child(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string& path, std::size_t index) {
    return path + "[" + std::to_string(index) + "]";
}

[[noreturn]] void fail(const std::string& path, std::string_view what) {
    throw config_error(path + ": " + std::string(what));
}

// ---- ${ENV} expansion -------------------------------------------------------------------------

bool env_name_char(char c, bool first) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
}

// "${NAME}" is replaced by the variable's value; "$${" stands for a literal "${". Any other '$'
// is kept as it is, so a literal password such as "pa$$word" survives untouched.
std::string expand(std::string_view in, const std::string& path, const env_lookup& env) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '$' || i + 1 == in.size()) {
            out += in[i];
            continue;
        }
        if (in.substr(i, 3) == "$${") {
            out += "${";
            i += 2;
            continue;
        }
        if (in[i + 1] != '{') {
            out += '$';
            continue;
        }
        const std::size_t close = in.find('}', i + 2);
        if (close == std::string_view::npos) fail(path, "unterminated ${ in \"" + std::string(in) + "\"");
        const std::string_view name = in.substr(i + 2, close - i - 2);
        bool valid = !name.empty();
        for (std::size_t k = 0; k < name.size() && valid; ++k) valid = env_name_char(name[k], k == 0);
        if (!valid) fail(path, "invalid environment variable name \"" + std::string(name) + "\"");
        const std::optional<std::string> value = env(name);
        if (!value) fail(path, "environment variable " + std::string(name) + " is not set");
        // The expanded config ends up as JSON text (each plugin's section), which cannot hold
        // bytes that are not UTF-8 (found by tests/fuzz).
        if (!valid_utf8(*value)) fail(path, "environment variable " + std::string(name) + " is not valid UTF-8");
        out += *value;
        i = close;
    }
    return out;
}

void expand_all(json::value& v, const std::string& path, const env_lookup& env) {
    if (auto* s = v.if_string()) {
        if (s->find('$') != json::string::npos) *s = expand(*s, path, env);
    } else if (auto* o = v.if_object()) {
        for (auto& kv : *o) expand_all(kv.value(), child(path, kv.key()), env);
    } else if (auto* a = v.if_array()) {
        for (std::size_t i = 0; i < a->size(); ++i) expand_all((*a)[i], element(path, i), env);
    }
}

// ---- numbers -----------------------------------------------------------------------------------

// Boost.JSON (1.81) parses a decimal number with up to 1 ULP of error, so a number with many
// digits (an integer beyond 64 bits, such as 10737444444444444444444...) may not survive being
// written back and read again: the config `check-config` prints, or a plugin's section as the
// plugin receives it, would then hold a different value than the file. Such a number is refused,
// naming its key, rather than silently changed (found by tests/fuzz/config_fuzz.cpp).
void check_numbers(const json::value& v, const std::string& path) {
    if (const double* d = v.if_double()) {
        json::error_code ec;
        const json::value back = json::parse(json::serialize(v), ec);
        if (ec || !back.is_double() || back.get_double() != *d)
            fail(path, "the number " + json::serialize(v) + " cannot be kept exactly; write it with fewer digits");
    } else if (const auto* o = v.if_object()) {
        for (const auto& kv : *o) check_numbers(kv.value(), child(path, kv.key()));
    } else if (const auto* a = v.if_array()) {
        for (std::size_t i = 0; i < a->size(); ++i) check_numbers((*a)[i], element(path, i));
    }
}

// ---- duplicate keys ---------------------------------------------------------------------------

// Boost.JSON keeps the last of two equal keys without a word; in a config that hides a typo or a
// merge accident ("enabled": false ... "enabled": true), so a first pass over the text refuses
// duplicates by path. Everything else (syntax errors included) is left to the real parse.
class duplicate_key_finder {
public:
    static constexpr std::size_t max_array_size = -1;
    static constexpr std::size_t max_object_size = -1;
    static constexpr std::size_t max_string_size = -1;
    static constexpr std::size_t max_key_size = -1;

    std::string duplicate;  // path of the first repeated key

    bool on_document_begin(boost::system::error_code&) { return true; }
    bool on_document_end(boost::system::error_code&) { return true; }
    bool on_object_begin(boost::system::error_code&) { return open(true); }
    bool on_object_end(std::size_t, boost::system::error_code&) { return close(); }
    bool on_array_begin(boost::system::error_code&) { return open(false); }
    bool on_array_end(std::size_t, boost::system::error_code&) { return close(); }
    bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
        key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(json::string_view s, std::size_t, boost::system::error_code& ec) {
        key_.append(s.data(), s.size());
        frame& top = frames_.back();
        top.key = std::move(key_);
        key_.clear();
        if (top.keys.insert(top.key).second) return true;
        duplicate = path();
        ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
        return false;
    }
    bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
    bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return value(); }
    bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) { return value(); }
    bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) { return value(); }
    bool on_double(double, json::string_view, boost::system::error_code&) { return value(); }
    bool on_bool(bool, boost::system::error_code&) { return value(); }
    bool on_null(boost::system::error_code&) { return value(); }
    bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
    bool on_comment(json::string_view, boost::system::error_code&) { return true; }

private:
    struct frame {
        bool object;
        std::set<std::string> keys;
        std::string key;
        std::size_t index = 0;
    };
    std::vector<frame> frames_;
    std::string key_;

    bool open(bool object) {
        frames_.push_back(frame{object, {}, {}, 0});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return value();
    }
    bool value() {
        if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
        return true;
    }
    std::string path() const {
        std::string out;
        for (const frame& f : frames_) out = f.object ? child(out, f.key) : element(out, f.index);
        return out;
    }
};

void refuse_duplicate_keys(std::string_view text) {
    json::basic_parser<duplicate_key_finder> parser(json::parse_options{});
    boost::system::error_code ec;
    parser.write_some(false, text.data(), text.size(), ec);
    if (!parser.handler().duplicate.empty()) fail(parser.handler().duplicate, "duplicate key");
}

// ---- typed readers ----------------------------------------------------------------------------

std::string string_of(const json::value& v, const std::string& path) {
    if (!v.is_string()) fail(path, "expected a string");
    return std::string(v.get_string());
}

bool bool_of(const json::value& v, const std::string& path) {
    if (!v.is_bool()) fail(path, "expected a boolean");
    return v.get_bool();
}

// An integer in [min, max]; 16.0 or "16" are refused rather than guessed at.
std::uint64_t integer_of(const json::value& v, const std::string& path, std::uint64_t min, std::uint64_t max) {
    const std::string range = "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    std::uint64_t n = 0;
    if (v.is_uint64()) {
        n = v.get_uint64();
    } else if (v.is_int64()) {
        if (v.get_int64() < 0) fail(path, range);
        n = static_cast<std::uint64_t>(v.get_int64());
    } else {
        fail(path, range);
    }
    if (n < min || n > max) fail(path, range);
    return n;
}

const json::object& object_of(const json::value& v, const std::string& path) {
    if (!v.is_object()) fail(path, "expected an object");
    return v.get_object();
}

const json::array& array_of(const json::value& v, const std::string& path) {
    if (!v.is_array()) fail(path, "expected an array");
    return v.get_array();
}

// ---- values with a format ---------------------------------------------------------------------

void parse_listen(const std::string& text, const std::string& path, std::string& address, std::uint16_t& port_out) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) fail(path, "expected ADDR:PORT");
    std::string addr = text.substr(0, colon);
    const std::string port = text.substr(colon + 1);
    // "[::1]:8080": the brackets only separate an IPv6 address from the port.
    if (addr.front() == '[') {
        if (addr.size() < 3 || addr.back() != ']') fail(path, "expected ADDR:PORT");
        addr = addr.substr(1, addr.size() - 2);
    } else if (addr.find(':') != std::string::npos) {
        fail(path, "expected ADDR:PORT (write an IPv6 address as [ADDR]:PORT)");
    }
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        fail(path, "expected ADDR:PORT with PORT from 0 to 65535");
    const unsigned long n = std::stoul(port);
    if (n > 65535) fail(path, "expected ADDR:PORT with PORT from 0 to 65535");
    address = addr;
    port_out = static_cast<std::uint16_t>(n);
}

// "sqlite:relative.db" becomes "sqlite:/config/dir/relative.db", so the database does not
// depend on the working directory; PostgreSQL URLs are kept verbatim.
std::string database_url(const std::string& text, const std::string& path, const std::filesystem::path& dir) {
    constexpr std::string_view sqlite = "sqlite:";
    if (text.starts_with(sqlite)) {
        const std::string file = text.substr(sqlite.size());
        if (file.empty()) fail(path, "expected sqlite:PATH with a file path");
        if (file == ":memory:") return text;
        std::filesystem::path p(file);
        if (p.is_relative()) p = dir / p;
        return std::string(sqlite) + p.lexically_normal().string();
    }
    if (text.starts_with("postgresql://") || text.starts_with("postgres://")) return text;
    fail(path, "expected sqlite:PATH or postgresql://USER:PASSWORD@HOST:PORT/DBNAME");
}

bool lowercase_hex(const std::string& s) {
    return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The name becomes a file name (lib<name>.so), so it may not leave the plugin folder.
bool valid_plugin_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (const char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

// ---- sections ---------------------------------------------------------------------------------

tls_config parse_tls(const json::value& v, const std::string& path, const std::filesystem::path& dir) {
    tls_config t;
    t.enabled = true;
    bool has_listen = false;
    for (const auto& kv : object_of(v, path)) {
        const std::string key(kv.key());
        const std::string kp = child(path, key);
        if (key == "listen") {
            parse_listen(string_of(kv.value(), kp), kp, t.listen_address, t.listen_port);
            has_listen = true;
        } else if (key == "certificate" || key == "private_key") {
            const std::string file = string_of(kv.value(), kp);
            if (file.empty()) fail(kp, "must not be empty");
            (key == "certificate" ? t.certificate : t.private_key) = (dir / file).lexically_normal();
        } else if (key == "min_version") {
            const std::string version = string_of(kv.value(), kp);
            if (version == "1.2") t.min_version = 12;
            else if (version == "1.3") t.min_version = 13;
            else fail(kp, "expected \"1.2\" or \"1.3\"");
        } else {
            fail(kp, "unknown key");
        }
    }
    if (!has_listen) fail(child(path, "listen"), "required key is missing");
    if (t.certificate.empty()) fail(child(path, "certificate"), "required key is missing");
    if (t.private_key.empty()) fail(child(path, "private_key"), "required key is missing");
    return t;
}

std::vector<token_config> parse_tokens(const json::value& v, const std::string& path) {
    std::vector<token_config> tokens;
    std::set<std::string> names, digests;
    const json::array& arr = array_of(v, path);
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const std::string at = element(path, i);
        const json::object& o = object_of(arr[i], at);
        token_config t;
        bool has_name = false, has_user = false, has_digest = false;
        for (const auto& kv : o) {
            const std::string key(kv.key());
            const std::string kp = child(at, key);
            if (key == "name") {
                t.name = string_of(kv.value(), kp);
                if (t.name.empty()) fail(kp, "must not be empty");
                has_name = true;
            } else if (key == "user") {
                t.user = string_of(kv.value(), kp);
                if (t.user.empty()) fail(kp, "must not be empty");
                has_user = true;
            } else if (key == "team") {
                t.team = string_of(kv.value(), kp);
            } else if (key == "sha256") {
                t.sha256 = string_of(kv.value(), kp);
                if (t.sha256.size() != 64 || !lowercase_hex(t.sha256))
                    fail(kp, "expected 64 lowercase hex digits (the SHA-256 of the token)");
                has_digest = true;
            } else {
                fail(kp, "unknown key");
            }
        }
        if (!has_name) fail(child(at, "name"), "required key is missing");
        if (!has_user) fail(child(at, "user"), "required key is missing");
        if (!has_digest) fail(child(at, "sha256"), "required key is missing");
        if (!names.insert(t.name).second) fail(child(at, "name"), "duplicate token name \"" + t.name + "\"");
        // Two entries with one digest would make the principal depend on list order.
        if (!digests.insert(t.sha256).second) fail(child(at, "sha256"), "the same token is configured twice");
        tokens.push_back(std::move(t));
    }
    return tokens;
}

std::vector<plugin_config> parse_plugins(const json::value& v, const std::string& path, const config& cfg) {
    std::vector<plugin_config> plugins;
    const json::object& all = object_of(v, path);
    for (const auto& kv : all) {
        const std::string at = child(path, kv.key());
        plugin_config p;
        p.name = std::string(kv.key());
        if (!valid_plugin_name(p.name)) fail(at, "plugin names use only a-z, 0-9, '_' and '-'");
        json::object section = object_of(kv.value(), at);

        const json::value* enabled = section.if_contains("enabled");
        if (!enabled) fail(child(at, "enabled"), "required key is missing");
        p.enabled = bool_of(*enabled, child(at, "enabled"));

        if (const json::value* req = section.if_contains("requires")) {
            const std::string rp = child(at, "requires");
            const json::array& arr = array_of(*req, rp);
            for (std::size_t i = 0; i < arr.size(); ++i) p.requires_.push_back(string_of(arr[i], element(rp, i)));
        }

        if (json::value* db = section.if_contains("database")) {
            *db = database_url(string_of(*db, child(at, "database")), child(at, "database"), cfg.config_dir);
        } else if (!cfg.database.empty()) {
            section["database"] = cfg.database;
        }
        p.json = json::serialize(section);
        plugins.push_back(std::move(p));
    }
    return plugins;
}

// Where in the text the parser stopped, as "line L, column C" (1-based).
std::string position(std::string_view text, std::size_t offset) {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

env_lookup process_env() {
    return [](std::string_view name) -> std::optional<std::string> {
        const char* v = std::getenv(std::string(name).c_str());
        if (!v) return std::nullopt;
        return std::string(v);
    };
}

config parse_config(std::string_view text, const std::filesystem::path& config_dir, const env_lookup& env) {
    refuse_duplicate_keys(text);
    json::stream_parser parser;
    boost::system::error_code ec;
    const std::size_t used = parser.write_some(text.data(), text.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec) throw config_error("config: invalid JSON at " + position(text, used) + ": " + ec.message());
    json::value root = parser.release();
    if (!root.is_object()) throw config_error("config: expected a JSON object at the top level");

    expand_all(root, "", env);
    check_numbers(root, "");

    config cfg;
    cfg.config_dir = std::filesystem::absolute(config_dir).lexically_normal();
    const json::object& top = root.get_object();

    // The database first: plugin sections default to it, wherever "plugins" is in the file.
    if (const json::value* db = top.if_contains("database"))
        cfg.database = database_url(string_of(*db, "database"), "database", cfg.config_dir);

    constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
    std::optional<std::uint32_t> streaming_bodies;  // its default depends on "workers"
    for (const auto& kv : top) {
        const std::string key(kv.key());
        const json::value& v = kv.value();
        if (key == "listen") {
            parse_listen(string_of(v, key), key, cfg.listen_address, cfg.listen_port);
        } else if (key == "workers") {
            cfg.workers = static_cast<unsigned>(integer_of(v, key, 1, 4096));
        } else if (key == "io_threads") {
            cfg.io_threads = static_cast<unsigned>(integer_of(v, key, 1, 256));
        } else if (key == "database") {
            // read above
        } else if (key == "plugin_dir") {
            const std::string dir = string_of(v, key);
            if (dir.empty()) fail(key, "must not be empty");
            cfg.plugin_dir = (cfg.config_dir / dir).lexically_normal();  // an absolute dir replaces
        } else if (key == "tokens") {
            cfg.tokens = parse_tokens(v, key);
        } else if (key == "plugins") {
            // parsed below, once every host setting it may depend on is known
        } else if (key == "log_level") {
            cfg.log_level = string_of(v, key);
            aq_log_level ignored;
            if (!log::parse_level(cfg.log_level, ignored)) fail(key, "expected debug, info, warn or error");
        } else if (key == "max_header_bytes") {
            cfg.max_header_bytes = static_cast<std::size_t>(integer_of(v, key, 1024, u32));
        } else if (key == "header_timeout_ms") {
            cfg.header_timeout_ms = static_cast<std::uint32_t>(integer_of(v, key, 1, u32));
        } else if (key == "idle_timeout_ms") {
            cfg.idle_timeout_ms = static_cast<std::uint32_t>(integer_of(v, key, 1, u32));
        } else if (key == "body_timeout_ms") {
            cfg.body_timeout_ms = static_cast<std::uint32_t>(integer_of(v, key, 1, u32));
        } else if (key == "shutdown_timeout_ms") {
            cfg.shutdown_timeout_ms = static_cast<std::uint32_t>(integer_of(v, key, 0, u32));
        } else if (key == "max_drain_bytes") {
            cfg.max_drain_bytes = integer_of(v, key, 0, std::numeric_limits<std::uint64_t>::max());
        } else if (key == "max_connections") {
            cfg.max_connections = static_cast<std::uint32_t>(integer_of(v, key, 1, u32));
        } else if (key == "max_connections_per_ip") {
            cfg.max_connections_per_ip = static_cast<std::uint32_t>(integer_of(v, key, 0, u32));
        } else if (key == "max_requests_per_principal") {
            cfg.max_requests_per_principal = static_cast<std::uint32_t>(integer_of(v, key, 1, u32));
        } else if (key == "max_queued_requests") {
            cfg.max_queued_requests = static_cast<std::uint32_t>(integer_of(v, key, 1, u32));
        } else if (key == "min_body_rate_bytes_per_s") {
            cfg.min_body_rate_bytes_per_s = integer_of(v, key, 0, u32);
        } else if (key == "body_rate_window_ms") {
            cfg.body_rate_window_ms = static_cast<std::uint32_t>(integer_of(v, key, 100, u32));
        } else if (key == "spool_dir") {
            const std::string dir = string_of(v, key);
            if (dir.empty()) fail(key, "must not be empty");
            cfg.spool_dir = (cfg.config_dir / dir).lexically_normal();
        } else if (key == "spool_memory_bytes") {
            cfg.spool_memory_bytes = integer_of(v, key, 0, 1ull << 30);
        } else if (key == "max_spool_bytes") {
            cfg.max_spool_bytes = integer_of(v, key, 0, std::numeric_limits<std::uint64_t>::max());
        } else if (key == "stream_bodies_after_bytes") {
            cfg.stream_bodies_after_bytes = integer_of(v, key, 0, std::numeric_limits<std::uint64_t>::max());
        } else if (key == "max_streaming_bodies") {
            streaming_bodies = static_cast<std::uint32_t>(integer_of(v, key, 0, u32));
        } else if (key == "metrics") {
            const std::string mode = string_of(v, key);
            if (mode == "token") cfg.metrics = metrics_access::token;
            else if (mode == "public") cfg.metrics = metrics_access::open;
            else if (mode == "off") cfg.metrics = metrics_access::off;
            else fail(key, "expected token, public or off");
        } else if (key == "access_log") {
            const std::string target = string_of(v, key);
            if (target.empty()) fail(key, "expected off, stdout, stderr or a file path");
            cfg.access_log = target == "off" || target == "stdout" || target == "stderr"
                                 ? target
                                 : (cfg.config_dir / target).lexically_normal().string();
        } else if (key == "readiness_interval_ms") {
            cfg.readiness_interval_ms = static_cast<std::uint32_t>(integer_of(v, key, 100, 3'600'000));
        } else if (key == "tls") {
            cfg.tls = parse_tls(v, key, cfg.config_dir);
        } else {
            fail(key, "unknown key");
        }
    }
    if (const json::value* plugins = top.if_contains("plugins")) cfg.plugins = parse_plugins(*plugins, "plugins", cfg);
    // Streaming handlers wait on their clients: they must leave workers for everyone else.
    cfg.max_streaming_bodies = streaming_bodies.value_or(cfg.workers / 4);
    if (cfg.max_streaming_bodies >= cfg.workers)
        fail("max_streaming_bodies", "must be less than workers (" + std::to_string(cfg.workers) + ")");
    if (cfg.spool_dir.empty()) {
        const std::optional<std::string> tmp = env("TMPDIR");
        cfg.spool_dir = tmp && !tmp->empty() ? std::filesystem::path(*tmp) : std::filesystem::path("/tmp");
    }
    return cfg;
}

// ---- the effective config ---------------------------------------------------------------------

namespace {

constexpr std::string_view redacted = "<redacted>";

std::string listen_text(const std::string& address, std::uint16_t port) {
    // Brackets whenever the parser would take them off: an IPv6 address.
    const bool bracket = address.find(':') != std::string::npos || (!address.empty() && address.front() == '[');
    return (bracket ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

const char* metrics_text(metrics_access m) {
    switch (m) {
    case metrics_access::token: return "token";
    case metrics_access::open: return "public";
    case metrics_access::off: return "off";
    }
    return "token";
}

// "postgresql://user:secret@host/db?password=x" -> "postgresql://user:<redacted>@host/db?password=<redacted>".
std::string redact_url(std::string_view url) {
    const auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return std::string(url);
    std::string out(url.substr(0, scheme + 3));
    std::string_view rest = url.substr(scheme + 3);
    const auto path = rest.find_first_of("/?");
    const auto at = rest.substr(0, path).rfind('@');
    if (at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        const auto colon = userinfo.find(':');
        out += userinfo.substr(0, colon);
        if (colon != std::string_view::npos) out += ":" + std::string(redacted);
        out += '@';
        rest.remove_prefix(at + 1);
    }
    const auto query = rest.find('?');
    out += rest.substr(0, query);
    if (query == std::string_view::npos) return out;
    rest.remove_prefix(query);
    while (!rest.empty()) {  // '?' or '&', then key=value
        out += rest.front();
        rest.remove_prefix(1);
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        const std::string_view key = pair.substr(0, eq);
        if (eq != std::string_view::npos && key.find("password") != std::string_view::npos)
            out += std::string(key) + "=" + std::string(redacted);
        else
            out += pair;
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp);
    }
    return out;
}

bool secret_key(std::string_view key) {
    std::string lower(key);
    for (char& c : lower) c = ascii_lower(c);
    for (std::string_view word : {"password", "secret", "api_key", "apikey", "token", "private_key", "credential",
                                  "passphrase", "authorization", "sha256"})
        if (lower.find(word) != std::string::npos) return true;
    return false;
}

bool looks_like_url(std::string_view s) { return s.find("://") != std::string_view::npos; }

void redact_section(json::value& v) {
    if (auto* o = v.if_object()) {
        for (auto& kv : *o) {
            if (secret_key(kv.key()) && !kv.value().is_null() && !(kv.value().is_string() && kv.value().get_string().empty()))
                kv.value() = redacted;
            else
                redact_section(kv.value());
        }
    } else if (auto* a = v.if_array()) {
        for (auto& e : *a) redact_section(e);
    } else if (auto* str = v.if_string(); str && looks_like_url(*str)) {
        *str = redact_url(*str);
    }
}

// Every string as a file meant to be read literally holds it: a "${" becomes "$${".
void escape_references(json::value& v) {
    if (auto* str = v.if_string()) {
        if (str->find("${") == json::string::npos) return;
        std::string out;
        for (std::size_t i = 0; i < str->size(); ++i) {
            if (i + 1 < str->size() && (*str)[i] == '$' && (*str)[i + 1] == '{') out += '$';
            out += (*str)[i];
        }
        *str = out;
    } else if (auto* o = v.if_object()) {
        for (auto& kv : *o) escape_references(kv.value());
    } else if (auto* a = v.if_array()) {
        for (auto& e : *a) escape_references(e);
    }
}

json::object effective_object(const config& c) {
    json::object o;
    o["listen"] = listen_text(c.listen_address, c.listen_port);
    o["workers"] = c.workers;
    o["io_threads"] = c.io_threads;
    o["database"] = c.database;
    o["plugin_dir"] = c.plugin_dir.string();
    json::array tokens;
    for (const auto& t : c.tokens) {
        json::object to{{"name", t.name}, {"user", t.user}, {"sha256", t.sha256}};
        if (!t.team.empty()) to["team"] = t.team;
        tokens.push_back(std::move(to));
    }
    o["tokens"] = std::move(tokens);
    o["log_level"] = c.log_level;
    o["max_header_bytes"] = c.max_header_bytes;
    o["header_timeout_ms"] = c.header_timeout_ms;
    o["idle_timeout_ms"] = c.idle_timeout_ms;
    o["body_timeout_ms"] = c.body_timeout_ms;
    o["shutdown_timeout_ms"] = c.shutdown_timeout_ms;
    o["max_drain_bytes"] = c.max_drain_bytes;
    o["max_connections"] = c.max_connections;
    o["max_connections_per_ip"] = c.max_connections_per_ip;
    o["max_requests_per_principal"] = c.max_requests_per_principal;
    o["max_queued_requests"] = c.max_queued_requests;
    o["min_body_rate_bytes_per_s"] = c.min_body_rate_bytes_per_s;
    o["body_rate_window_ms"] = c.body_rate_window_ms;
    o["spool_dir"] = c.spool_dir.string();
    o["spool_memory_bytes"] = c.spool_memory_bytes;
    o["max_spool_bytes"] = c.max_spool_bytes;
    o["stream_bodies_after_bytes"] = c.stream_bodies_after_bytes;
    o["max_streaming_bodies"] = c.max_streaming_bodies;
    o["metrics"] = metrics_text(c.metrics);
    o["access_log"] = c.access_log;
    o["readiness_interval_ms"] = c.readiness_interval_ms;
    if (c.tls.enabled)
        o["tls"] = json::object{{"listen", listen_text(c.tls.listen_address, c.tls.listen_port)},
                                {"certificate", c.tls.certificate.string()},
                                {"private_key", c.tls.private_key.string()},
                                {"min_version", c.tls.min_version == 13 ? "1.3" : "1.2"}};
    json::object plugins;
    for (const auto& p : c.plugins) plugins[p.name] = json::parse(p.json);
    o["plugins"] = std::move(plugins);
    return o;
}

// JSON text indented by two spaces per level.
void write_pretty(std::string& out, const json::value& v, int depth) {
    const std::string indent(static_cast<std::size_t>(depth + 1) * 2, ' ');
    const std::string closing(static_cast<std::size_t>(depth) * 2, ' ');
    if (const auto* o = v.if_object(); o && !o->empty()) {
        out += "{\n";
        bool first = true;
        for (const auto& kv : *o) {
            if (!first) out += ",\n";
            first = false;
            out += indent + json::serialize(json::value(kv.key())) + ": ";
            write_pretty(out, kv.value(), depth + 1);
        }
        out += "\n" + closing + "}";
    } else if (const auto* a = v.if_array(); a && !a->empty()) {
        out += "[\n";
        for (std::size_t i = 0; i < a->size(); ++i) {
            if (i) out += ",\n";
            out += indent;
            write_pretty(out, (*a)[i], depth + 1);
        }
        out += "\n" + closing + "]";
    } else {
        out += json::serialize(v);
    }
}

}  // namespace

std::string effective_json(const config& cfg, bool redact, bool pretty) {
    json::object o = effective_object(cfg);
    if (redact) {
        for (auto& t : o["tokens"].as_array()) t.as_object()["sha256"] = redacted;
        o["database"] = redact_url(cfg.database);
        for (auto& kv : o["plugins"].as_object()) redact_section(kv.value());
    }
    json::value v = std::move(o);
    escape_references(v);
    if (!pretty) return json::serialize(v);
    std::string out;
    write_pretty(out, v, 0);
    out += '\n';
    return out;
}

std::vector<std::string> changed_keys(const config& before, const config& after) {
    const json::object a = effective_object(before), b = effective_object(after);
    std::vector<std::string> changed;
    for (const auto& kv : b) {
        if (kv.key() == "plugins") continue;
        const json::value* old = a.if_contains(kv.key());
        if (!old || *old != kv.value()) changed.emplace_back(kv.key());
    }
    for (const auto& kv : a)
        if (!b.contains(kv.key())) changed.emplace_back(kv.key());  // tls removed
    const json::object &pa = a.at("plugins").as_object(), &pb = b.at("plugins").as_object();
    for (const auto& kv : pb)
        if (const json::value* old = pa.if_contains(kv.key()); !old || *old != kv.value())
            changed.push_back("plugins." + std::string(kv.key()));
    for (const auto& kv : pa)
        if (!pb.contains(kv.key())) changed.push_back("plugins." + std::string(kv.key()));
    return changed;
}

config load_config(const std::filesystem::path& file) {
    const auto unreadable = [&](int err) {
        return config_error("cannot read config " + file.string() + ": " + std::strerror(err));
    };
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw unreadable(errno);
    std::string text;
    char buf[16384];
    while (true) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            throw unreadable(err);
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return parse_config(text, std::filesystem::absolute(file).parent_path());
}

}  // namespace aqd
