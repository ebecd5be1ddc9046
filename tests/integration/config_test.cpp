// Config errors stop the host at startup with the offending key in the message; ${ENV}
// references and relative paths work.
#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "testplug.hpp"

#include <filesystem>

namespace json = boost::json;

namespace {

void refused_naming(json::object config, const std::string& key) {
    auto failure = aqt::expect_startup_failure(std::move(config));
    BOOST_TEST(failure.status.exited, failure.status.describe());
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find(key) != std::string::npos, "expected \"" << key << "\" in:\n" << failure.log);
}

}  // namespace

BOOST_AUTO_TEST_CASE(misspelt_top_level_key_is_refused_by_name) {
    refused_naming(json::object{{"listne", "127.0.0.1:0"}}, "listne");
}

BOOST_AUTO_TEST_CASE(wrong_type_is_refused_by_key_path) {
    refused_naming(json::object{{"workers", "many"}}, "workers");
}

BOOST_AUTO_TEST_CASE(misspelt_plugin_key_is_refused_by_path) {
    refused_naming(json::object{{"plugins", {{"testplug", {{"enabeld", true}}}}}}, "plugins.testplug");
}

BOOST_AUTO_TEST_CASE(misspelt_token_key_is_refused_by_path) {
    refused_naming(json::object{{"tokens", json::array{{{"name", "x"}, {"user", "x"}, {"sha265", "00"}}}}}, "tokens");
}

BOOST_AUTO_TEST_CASE(malformed_json_is_refused_with_its_position) {
    aqt::gateway_options o;
    o.raw_config = "{\"listen\": \"127.0.0.1:0\",\n \"workers\": }";
    auto failure = aqt::expect_startup_failure(o);
    BOOST_TEST(failure.status.exited);
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find("invalid JSON") != std::string::npos, failure.log);
}

BOOST_AUTO_TEST_CASE(environment_references_are_expanded) {
    std::string token = "env-" + aqt::random_hex(16);
    aqt::gateway_options o;
    o.config = aqt::with_testplug(
        {{"tokens", json::array{{{"name", "ops"}, {"user", "olivia"}, {"sha256", "${AQT_TEST_TOKEN_SHA256}"}}}}});
    o.env["AQT_TEST_TOKEN_SHA256"] = aqt::sha256_hex(token);
    aqt::gateway gw(o);
    aqt::http::client c(gw.port());
    auto r = c.get("/whoami", {{"Authorization", "Bearer " + token}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.json().at("user") == "olivia");
}

BOOST_AUTO_TEST_CASE(undefined_environment_reference_is_refused_by_name) {
    refused_naming(json::object{{"database", "${AQT_SURELY_UNDEFINED_VARIABLE}"}}, "AQT_SURELY_UNDEFINED_VARIABLE");
}

BOOST_AUTO_TEST_CASE(relative_plugin_dir_is_resolved_against_the_config_folder) {
    // The harness writes the config next to its "plugins" dir; the process runs in "/".
    aqt::gateway_options o;
    o.config = aqt::with_testplug({{"plugin_dir", "plugins"}});
    o.working_dir = "/";
    aqt::gateway gw(o);
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/public").status == 200);
}
