#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include "config.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>
#include <unistd.h>

using aqd::config;
using aqd::config_error;
using aqd::parse_config;

namespace {

const std::string digest_a(64, 'a');
const std::string digest_b(64, 'b');

aqd::env_lookup fake_env(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        const auto it = vars.find(std::string(name));
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

config parse(std::string_view text, std::map<std::string, std::string> env = {}) {
    return parse_config(text, "/etc/aq", fake_env(std::move(env)));
}

// The message of the config_error that parsing `text` throws.
std::string error_of(std::string_view text, std::map<std::string, std::string> env = {}) {
    try {
        parse(text, std::move(env));
    } catch (const config_error& e) {
        return e.what();
    }
    return "<no error>";
}

boost::json::object plugin_json(const config& cfg, std::size_t i) {
    return boost::json::parse(cfg.plugins.at(i).json).as_object();
}

}  // namespace

BOOST_AUTO_TEST_CASE(empty_object_keeps_defaults) {
    const config cfg = parse("{}");
    BOOST_TEST(cfg.listen_address == "127.0.0.1");
    BOOST_TEST(cfg.listen_port == 8080);
    BOOST_TEST(cfg.workers == 16u);
    BOOST_TEST(cfg.io_threads == std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
    BOOST_TEST(cfg.database.empty());
    BOOST_TEST(cfg.config_dir == "/etc/aq");
    BOOST_TEST(cfg.log_level == "info");
    BOOST_TEST(cfg.max_header_bytes == 16u * 1024);
    BOOST_TEST(cfg.max_drain_bytes == 1u << 20);
    BOOST_TEST(cfg.tokens.empty());
    BOOST_TEST(cfg.plugins.empty());
}

BOOST_AUTO_TEST_CASE(host_settings_are_read) {
    const config cfg = parse(R"({
        "listen": "0.0.0.0:9000", "workers": 4, "io_threads": 2, "log_level": "debug",
        "max_header_bytes": 8192, "header_timeout_ms": 1, "idle_timeout_ms": 2,
        "body_timeout_ms": 3, "shutdown_timeout_ms": 0, "max_drain_bytes": 0
    })");
    BOOST_TEST(cfg.listen_address == "0.0.0.0");
    BOOST_TEST(cfg.listen_port == 9000);
    BOOST_TEST(cfg.workers == 4u);
    BOOST_TEST(cfg.io_threads == 2u);
    BOOST_TEST(cfg.log_level == "debug");
    BOOST_TEST(cfg.max_header_bytes == 8192u);
    BOOST_TEST(cfg.header_timeout_ms == 1u);
    BOOST_TEST(cfg.idle_timeout_ms == 2u);
    BOOST_TEST(cfg.body_timeout_ms == 3u);
    BOOST_TEST(cfg.shutdown_timeout_ms == 0u);
    BOOST_TEST(cfg.max_drain_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(listen_accepts_port_zero_and_bracketed_ipv6) {
    BOOST_TEST(parse(R"({"listen": "127.0.0.1:0"})").listen_port == 0);
    const config v6 = parse(R"({"listen": "[::1]:65535"})");
    BOOST_TEST(v6.listen_address == "::1");
    BOOST_TEST(v6.listen_port == 65535);
}

BOOST_AUTO_TEST_CASE(listen_rejects_malformed_addresses) {
    BOOST_TEST(error_of(R"({"listen": "8080"})") == "listen: expected ADDR:PORT");
    BOOST_TEST(error_of(R"({"listen": ":8080"})") == "listen: expected ADDR:PORT");
    BOOST_TEST(error_of(R"({"listen": "host:"})") == "listen: expected ADDR:PORT");
    BOOST_TEST(error_of(R"({"listen": "host:65536"})") == "listen: expected ADDR:PORT with PORT from 0 to 65535");
    BOOST_TEST(error_of(R"({"listen": "host:-1"})") == "listen: expected ADDR:PORT with PORT from 0 to 65535");
    BOOST_TEST(error_of(R"({"listen": "::1:80"})") ==
               "listen: expected ADDR:PORT (write an IPv6 address as [ADDR]:PORT)");
    BOOST_TEST(error_of(R"({"listen": 8080})") == "listen: expected a string");
}

BOOST_AUTO_TEST_CASE(unknown_top_level_key_is_named) {
    BOOST_TEST(error_of(R"({"lisen": "127.0.0.1:80"})") == "lisen: unknown key");
}

BOOST_AUTO_TEST_CASE(integers_are_strict) {
    BOOST_TEST(error_of(R"({"workers": "4"})") == "workers: expected an integer from 1 to 4096");
    BOOST_TEST(error_of(R"({"workers": 4.0})") == "workers: expected an integer from 1 to 4096");
    BOOST_TEST(error_of(R"({"workers": 0})") == "workers: expected an integer from 1 to 4096");
    BOOST_TEST(error_of(R"({"workers": -2})") == "workers: expected an integer from 1 to 4096");
    BOOST_TEST(error_of(R"({"header_timeout_ms": 4294967296})") ==
               "header_timeout_ms: expected an integer from 1 to 4294967295");
}

BOOST_AUTO_TEST_CASE(log_level_must_be_known) {
    BOOST_TEST(error_of(R"({"log_level": "verbose"})") == "log_level: expected debug, info, warn or error");
}

BOOST_AUTO_TEST_CASE(invalid_json_reports_position) {
    BOOST_TEST(error_of("{\n  \"workers\": 4,\n  oops\n}").starts_with("config: invalid JSON at line 3, column 3: "));
    BOOST_TEST(error_of("[1]") == "config: expected a JSON object at the top level");
    BOOST_TEST(error_of("").starts_with("config: invalid JSON at line 1, column 1: "));
}

BOOST_AUTO_TEST_CASE(relative_sqlite_path_resolves_against_config_dir) {
    BOOST_TEST(parse(R"({"database": "sqlite:data/aq.db"})").database == "sqlite:/etc/aq/data/aq.db");
    BOOST_TEST(parse(R"({"database": "sqlite:../var/aq.db"})").database == "sqlite:/etc/var/aq.db");
    BOOST_TEST(parse(R"({"database": "sqlite:/srv/aq.db"})").database == "sqlite:/srv/aq.db");
}

BOOST_AUTO_TEST_CASE(postgresql_url_is_kept_verbatim) {
    const std::string url = "postgresql://aq:s3cret@db.example:5432/aqueduct";
    BOOST_TEST(parse(R"({"database": ")" + url + R"("})").database == url);
}

BOOST_AUTO_TEST_CASE(unknown_database_scheme_is_rejected) {
    BOOST_TEST(error_of(R"({"database": "mysql://x"})") ==
               "database: expected sqlite:PATH or postgresql://USER:PASSWORD@HOST:PORT/DBNAME");
    BOOST_TEST(error_of(R"({"database": "sqlite:"})") == "database: expected sqlite:PATH with a file path");
}

BOOST_AUTO_TEST_CASE(plugin_dir_is_resolved_against_config_dir) {
    BOOST_TEST(parse(R"({"plugin_dir": "lib/plugins"})").plugin_dir == "/etc/aq/lib/plugins");
    BOOST_TEST(parse(R"({"plugin_dir": "/opt/aq"})").plugin_dir == "/opt/aq");
}

BOOST_AUTO_TEST_CASE(tokens_are_read_with_optional_team) {
    const config cfg = parse(R"({"tokens": [
        {"name": "alice-laptop", "user": "alice", "sha256": ")" + digest_a + R"("},
        {"name": "ci", "user": "ci-bot", "team": "platform", "sha256": ")" + digest_b + R"("}]})");
    BOOST_REQUIRE_EQUAL(cfg.tokens.size(), 2u);
    BOOST_TEST(cfg.tokens[0].name == "alice-laptop");
    BOOST_TEST(cfg.tokens[0].user == "alice");
    BOOST_TEST(cfg.tokens[0].team == "");
    BOOST_TEST(cfg.tokens[0].sha256 == digest_a);
    BOOST_TEST(cfg.tokens[1].team == "platform");
}

BOOST_AUTO_TEST_CASE(token_digest_must_be_64_lowercase_hex) {
    const std::string upper(64, 'A');
    BOOST_TEST(error_of(R"({"tokens": [{"name": "a", "user": "u", "sha256": ")" + upper + R"("}]})") ==
               "tokens[0].sha256: expected 64 lowercase hex digits (the SHA-256 of the token)");
    BOOST_TEST(error_of(R"({"tokens": [{"name": "a", "user": "u", "sha256": "abc"}]})") ==
               "tokens[0].sha256: expected 64 lowercase hex digits (the SHA-256 of the token)");
}

BOOST_AUTO_TEST_CASE(token_errors_name_the_entry) {
    BOOST_TEST(error_of(R"({"tokens": [{"name": "a", "sha256": ")" + digest_a + R"("}]})") ==
               "tokens[0].user: required key is missing");
    BOOST_TEST(error_of(R"({"tokens": [{"name": "a", "user": "u", "sha256": ")" + digest_a +
                        R"(", "role": "admin"}]})") == "tokens[0].role: unknown key");
    BOOST_TEST(error_of(R"({"tokens": {}})") == "tokens: expected an array");
    BOOST_TEST(error_of(R"({"tokens": [1]})") == "tokens[0]: expected an object");
}

BOOST_AUTO_TEST_CASE(duplicate_token_names_are_rejected) {
    BOOST_TEST(error_of(R"({"tokens": [
        {"name": "a", "user": "u", "sha256": ")" + digest_a + R"("},
        {"name": "a", "user": "v", "sha256": ")" + digest_b + R"("}]})") ==
               "tokens[1].name: duplicate token name \"a\"");
}

BOOST_AUTO_TEST_CASE(duplicate_token_digests_are_rejected) {
    BOOST_TEST(error_of(R"({"tokens": [
        {"name": "a", "user": "u", "sha256": ")" + digest_a + R"("},
        {"name": "b", "user": "v", "sha256": ")" + digest_a + R"("}]})") ==
               "tokens[1].sha256: the same token is configured twice");
}

BOOST_AUTO_TEST_CASE(plugins_keep_file_order_and_their_own_keys) {
    const config cfg = parse(R"({"database": "sqlite:aq.db", "plugins": {
        "files": {"enabled": true, "max_upload_bytes": 100, "nested": {"a": [1, 2]}},
        "batches": {"enabled": false, "requires": ["files"]}}})");
    BOOST_REQUIRE_EQUAL(cfg.plugins.size(), 2u);
    BOOST_TEST(cfg.plugins[0].name == "files");
    BOOST_TEST(cfg.plugins[0].enabled);
    BOOST_TEST(cfg.plugins[0].requires_.empty());
    BOOST_TEST(cfg.plugins[1].name == "batches");
    BOOST_TEST(!cfg.plugins[1].enabled);
    BOOST_TEST(cfg.plugins[1].requires_ == std::vector<std::string>{"files"});

    const auto files = plugin_json(cfg, 0);
    BOOST_TEST(files.at("enabled").as_bool());
    BOOST_TEST(files.at("max_upload_bytes").as_int64() == 100);
    BOOST_TEST(boost::json::serialize(files.at("nested")) == R"({"a":[1,2]})");
    const auto batches = plugin_json(cfg, 1);
    BOOST_TEST(boost::json::serialize(batches.at("requires")) == R"(["files"])");
}

BOOST_AUTO_TEST_CASE(plugin_database_defaults_to_host_database_even_when_declared_later) {
    const config cfg = parse(R"({"plugins": {"files": {"enabled": true}}, "database": "sqlite:aq.db"})");
    BOOST_TEST(plugin_json(cfg, 0).at("database").as_string() == "sqlite:/etc/aq/aq.db");
}

BOOST_AUTO_TEST_CASE(plugin_own_database_is_kept_and_relative_sqlite_resolved) {
    const config cfg = parse(R"({"database": "sqlite:aq.db", "plugins": {
        "files": {"enabled": true, "database": "sqlite:files.db"},
        "batches": {"enabled": true, "database": "postgresql://u:p@h:5432/d"}}})");
    BOOST_TEST(plugin_json(cfg, 0).at("database").as_string() == "sqlite:/etc/aq/files.db");
    BOOST_TEST(plugin_json(cfg, 1).at("database").as_string() == "postgresql://u:p@h:5432/d");
}

BOOST_AUTO_TEST_CASE(plugin_without_host_database_gets_no_database_key) {
    const config cfg = parse(R"({"plugins": {"files": {"enabled": true}}})");
    BOOST_TEST(!plugin_json(cfg, 0).contains("database"));
}

BOOST_AUTO_TEST_CASE(plugin_errors_name_the_key_path) {
    BOOST_TEST(error_of(R"({"plugins": {"files": {"enabled": "yes"}}})") ==
               "plugins.files.enabled: expected a boolean");
    BOOST_TEST(error_of(R"({"plugins": {"files": {}}})") == "plugins.files.enabled: required key is missing");
    BOOST_TEST(error_of(R"({"plugins": {"files": {"enabled": true, "requires": "x"}}})") ==
               "plugins.files.requires: expected an array");
    BOOST_TEST(error_of(R"({"plugins": {"files": {"enabled": true, "requires": ["a", 2]}}})") ==
               "plugins.files.requires[1]: expected a string");
    BOOST_TEST(error_of(R"({"plugins": {"files": {"enabled": true, "database": 1}}})") ==
               "plugins.files.database: expected a string");
    BOOST_TEST(error_of(R"({"plugins": {"files": true}})") == "plugins.files: expected an object");
    BOOST_TEST(error_of(R"({"plugins": []})") == "plugins: expected an object");
}

BOOST_AUTO_TEST_CASE(plugin_name_cannot_escape_the_plugin_dir) {
    BOOST_TEST(error_of(R"({"plugins": {"../evil": {"enabled": true}}})") ==
               "plugins.../evil: plugin names use only a-z, 0-9, '_' and '-'");
}

BOOST_AUTO_TEST_CASE(env_references_expand_everywhere) {
    const config cfg = parse(R"({"listen": "${HOST}:${PORT}", "database": "postgresql://u:${PW}@h/d",
        "plugins": {"batches": {"enabled": true, "upstream": {"headers": ["Bearer ${KEY}"]}}}})",
                             {{"HOST", "10.0.0.1"}, {"PORT", "81"}, {"PW", "p@ss"}, {"KEY", "sk-1"}});
    BOOST_TEST(cfg.listen_address == "10.0.0.1");
    BOOST_TEST(cfg.listen_port == 81);
    BOOST_TEST(cfg.database == "postgresql://u:p@ss@h/d");
    const auto batches = plugin_json(cfg, 0);
    BOOST_TEST(batches.at("upstream").at("headers").at(0).as_string() == "Bearer sk-1");
    BOOST_TEST(batches.at("database").as_string() == "postgresql://u:p@ss@h/d");
}

BOOST_AUTO_TEST_CASE(unset_env_variable_names_the_key_path) {
    BOOST_TEST(error_of(R"({"plugins": {"batches": {"enabled": true, "upstream": {"api_key": "${NOPE}"}}}})") ==
               "plugins.batches.upstream.api_key: environment variable NOPE is not set");
    BOOST_TEST(error_of(R"({"tokens": [{"name": "${NOPE}"}]})") ==
               "tokens[0].name: environment variable NOPE is not set");
}

BOOST_AUTO_TEST_CASE(dollar_without_brace_and_escaped_reference_stay_literal) {
    const config cfg = parse(R"({"plugins": {"x": {"enabled": true, "a": "pa$$word$", "b": "$${HOME}", "c": "$X"}}})");
    const auto x = plugin_json(cfg, 0);
    BOOST_TEST(x.at("a").as_string() == "pa$$word$");
    BOOST_TEST(x.at("b").as_string() == "${HOME}");
    BOOST_TEST(x.at("c").as_string() == "$X");
}

BOOST_AUTO_TEST_CASE(malformed_env_reference_is_an_error) {
    BOOST_TEST(error_of(R"({"database": "sqlite:${DIR"})") == "database: unterminated ${ in \"sqlite:${DIR\"");
    BOOST_TEST(error_of(R"({"database": "sqlite:${}"})") == "database: invalid environment variable name \"\"");
    BOOST_TEST(error_of(R"({"database": "sqlite:${A-B}"})") ==
               "database: invalid environment variable name \"A-B\"");
}

BOOST_AUTO_TEST_CASE(load_config_resolves_against_the_file_folder) {
    char dir_template[] = "/tmp/aq-config-test-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    BOOST_REQUIRE(dir != nullptr);
    const std::filesystem::path file = std::filesystem::path(dir) / "aq.json";
    std::ofstream(file) << R"({"database": "sqlite:aq.db", "plugin_dir": "plugins"})";
    const config cfg = aqd::load_config(file);
    BOOST_TEST(cfg.config_dir == std::filesystem::path(dir));
    BOOST_TEST(cfg.database == "sqlite:" + std::string(dir) + "/aq.db");
    BOOST_TEST(cfg.plugin_dir == std::filesystem::path(dir) / "plugins");
    std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(load_config_reports_unreadable_file) {
    try {
        aqd::load_config("/nonexistent/aq.json");
        BOOST_FAIL("expected config_error");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()) == "cannot read config /nonexistent/aq.json: No such file or directory");
    }
}

BOOST_AUTO_TEST_CASE(duplicate_keys_are_refused_by_path) {
    BOOST_TEST(error_of(R"({"workers": 2, "workers": 3})") == "workers: duplicate key");
    BOOST_TEST(error_of(R"({"plugins": {"files": {"enabled": false, "enabled": true}}})") ==
               "plugins.files.enabled: duplicate key");
    BOOST_TEST(error_of(R"({"plugins": {"files": {"enabled": true}, "files": {"enabled": true}}})") ==
               "plugins.files: duplicate key");
    BOOST_TEST(error_of(R"({"tokens": [{"name": "a"}, {"name": "b", "user": "u", "user": "v"}]})") ==
               "tokens[1].user: duplicate key");
    BOOST_TEST(error_of(R"({"plugins": {"x": {"enabled": true, "a": [[1, {"k": 1, "k": 2}]]}}})") ==
               "plugins.x.a[0][1].k: duplicate key");
}

BOOST_AUTO_TEST_CASE(equal_keys_in_different_objects_are_fine) {
    const config cfg = parse(R"({"plugins": {"a": {"enabled": true, "o": {"enabled": 1}}, "b": {"enabled": false}}})");
    BOOST_TEST(cfg.plugins.size() == 2u);
}

// Found by tests/fuzz (fuzz_config): a variable's value ends up in each plugin's JSON text, which
// cannot hold bytes that are not UTF-8; the plugin would fail to parse its own section.
BOOST_AUTO_TEST_CASE(env_value_that_is_not_utf8_names_the_key_path) {
    const std::string doc = R"({"database": "postgresql://u:${PW}@h/d", "plugins": {"files": {"enabled": true}}})";
    for (const char* bad : {"p\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"})
        BOOST_TEST(error_of(doc, {{"PW", bad}}) == "database: environment variable PW is not valid UTF-8");
    const config cfg = parse(doc, {{"PW", "p\xc3\xa4ss\xf0\x9f\x94\x91"}});
    BOOST_TEST(plugin_json(cfg, 0).at("database").as_string() == "postgresql://u:p\xc3\xa4ss\xf0\x9f\x94\x91@h/d");
}

// Found by the config fuzz target: Boost.JSON parses a long decimal with up to 1 ULP of error,
// so such a number would not survive being written back (check-config, a plugin's section).
BOOST_AUTO_TEST_CASE(a_number_that_cannot_be_kept_exactly_is_refused_naming_its_key) {
    const std::string e = error_of(R"({"plugins": {"files": {"enabled": true,
        "quota_bytes": 10737444444444444444444444444444444444444444444444444444444444444444444182400}}})");
    // The digits shown are the parsed value's, which is the point: not the ones written.
    BOOST_TEST(e.starts_with("plugins.files.quota_bytes: the number 1.07374444444444"), e);
    BOOST_TEST(e.ends_with("E76 cannot be kept exactly; write it with fewer digits"), e);
    const config c = parse(R"({"plugins": {"x": {"enabled": true, "weight": 0.25, "big": 1e300, "n": 18446744073709551615}}})");
    BOOST_TEST(plugin_json(c, 0).at("weight").as_double() == 0.25);
}
