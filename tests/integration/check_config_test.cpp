// `aqueductd check-config FILE`: the effective config with secrets redacted and exit 0, or the
// start's own error message and a non-zero exit.
#define BOOST_TEST_MODULE check_config
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

struct config_file {
    fs::path dir;
    fs::path path;
    explicit config_file(const std::string& text) {
        std::string tmpl = (fs::temp_directory_path() / "aqt-check-XXXXXX").string();
        dir = ::mkdtemp(tmpl.data());
        fs::create_directories(dir / "plugins");
        fs::create_symlink(aqt::fixture_plugin_dir() / "libtestplug.so", dir / "plugins" / "libtestplug.so");
        path = dir / "aqueduct.json";
        std::ofstream(path) << text;
    }
    ~config_file() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

aqt::command_result check(const config_file& f, const std::map<std::string, std::string>& env = {}) {
    return aqt::run_program(aqt::aqueductd_path(), {"check-config", f.path.string()}, {}, std::chrono::seconds(20), env);
}

}  // namespace

BOOST_AUTO_TEST_CASE(prints_the_effective_config_with_secrets_redacted) {
    const std::string digest = aqt::sha256_hex("tok-" + aqt::random_hex(8));
    config_file f(R"({
      "listen": "127.0.0.1:9000",
      "database": "postgresql://aq:${AQT_DB_PASSWORD}@db.example:5432/aq?sslmode=require&password=again",
      "plugin_dir": "plugins",
      "access_log": "logs/access.log",
      "tokens": [{"name": "ops", "user": "olivia", "sha256": ")" + digest + R"("}],
      "plugins": {
        "testplug": {"enabled": true, "api_key": "${AQT_API_KEY}", "note": "literal $${HOME}",
                     "upstreams": [{"name": "u", "api_key": "sk-nested", "base_url": "https://x:pw@up.example/v1"}],
                     "s3": {"secret_access_key": "s3cr3t", "access_key_id": "AKIA"}}
      }
    })");
    const auto r = check(f, {{"AQT_DB_PASSWORD", "db-pass-123"}, {"AQT_API_KEY", "sk-top-456"}});
    BOOST_TEST_REQUIRE(r.status.success(), r.status.describe() << "\n" << r.output);
    for (const std::string& secret : {std::string("db-pass-123"), std::string("sk-top-456"), std::string("sk-nested"),
                                     std::string("s3cr3t"), digest, std::string("again"), std::string(":pw@")})
        BOOST_TEST(r.output.find(secret) == std::string::npos, secret << " in:\n" << r.output);

    const json::object c = json::parse(r.output).as_object();
    BOOST_TEST(c.at("listen") == "127.0.0.1:9000");
    BOOST_TEST(c.at("database") ==
               "postgresql://aq:<redacted>@db.example:5432/aq?sslmode=require&password=<redacted>");
    BOOST_TEST(std::string(c.at("plugin_dir").as_string()) == (f.dir / "plugins").string());
    BOOST_TEST(std::string(c.at("access_log").as_string()) == (f.dir / "logs" / "access.log").string());
    // Defaults are spelled out.
    BOOST_TEST(c.at("workers") == 16);
    BOOST_TEST(c.at("max_connections") == 10000);
    BOOST_TEST(c.at("metrics") == "token");
    BOOST_TEST(c.at("readiness_interval_ms") == 1000);
    BOOST_TEST(!c.contains("tls"));
    const auto& token = c.at("tokens").as_array().at(0).as_object();
    BOOST_TEST(token.at("name") == "ops");
    BOOST_TEST(token.at("user") == "olivia");
    BOOST_TEST(token.at("sha256") == "<redacted>");
    const auto& plug = c.at("plugins").as_object().at("testplug").as_object();
    BOOST_TEST(plug.at("api_key") == "<redacted>");
    BOOST_TEST(plug.at("note") == "literal $${HOME}");  // written back as the file would hold it
    BOOST_TEST(plug.at("database") == c.at("database"));
    const auto& up = plug.at("upstreams").as_array().at(0).as_object();
    BOOST_TEST(up.at("api_key") == "<redacted>");
    BOOST_TEST(up.at("base_url") == "https://x:<redacted>@up.example/v1");
    BOOST_TEST(plug.at("s3").as_object().at("secret_access_key") == "<redacted>");
    BOOST_TEST(plug.at("s3").as_object().at("access_key_id") == "AKIA");
}

BOOST_AUTO_TEST_CASE(an_invalid_config_fails_with_the_message_of_a_start) {
    config_file f(R"({"workers": "many", "database": "sqlite:x.db"})");
    const auto r = check(f);
    BOOST_TEST(r.status.exited);
    BOOST_TEST(r.status.code == 2);
    BOOST_TEST(r.output == "invalid config: workers: expected an integer from 1 to 4096\n");
}

BOOST_AUTO_TEST_CASE(an_unset_environment_variable_is_an_error) {
    config_file f(R"({"database": "${AQT_SURELY_UNSET_VARIABLE}"})");
    const auto r = check(f);
    BOOST_TEST(r.status.code == 2);
    BOOST_TEST(r.output == "invalid config: database: environment variable AQT_SURELY_UNSET_VARIABLE is not set\n");
}

BOOST_AUTO_TEST_CASE(a_plugin_that_cannot_be_loaded_fails_the_check) {
    config_file f(R"({"database": "sqlite:x.db", "plugin_dir": "plugins", "plugins": {"nope": {"enabled": true}}})");
    const auto r = check(f);
    BOOST_TEST(r.status.code == 1);
    BOOST_TEST(r.output == "plugin nope: no library at " + (f.dir / "plugins" / "libnope.so").string() + "\n");
    config_file cycle(R"({"database": "sqlite:x.db", "plugin_dir": "plugins",
                          "plugins": {"testplug": {"enabled": true, "requires": ["testplug"]}}})");
    const auto c = check(cycle);
    BOOST_TEST(c.status.code == 1);
    BOOST_TEST(c.output.find("testplug") != std::string::npos, c.output);
}

BOOST_AUTO_TEST_CASE(a_missing_file_and_a_missing_argument_are_errors) {
    const auto missing = aqt::run_aqueductd({"check-config", "/nonexistent/aqueduct.json"});
    BOOST_TEST(missing.status.code == 2);
    BOOST_TEST(missing.output == "invalid config: cannot read config /nonexistent/aqueduct.json: No such file or directory\n");
    const auto usage = aqt::run_aqueductd({"check-config"});
    BOOST_TEST(usage.status.code == 2);
    BOOST_TEST(usage.output.find("usage: aqueductd --config FILE") == 0u);
}
