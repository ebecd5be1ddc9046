// The loader refuses every ABI violation (tests/fixtures) before running any of the plugin's
// code, names the field that differed, and the process exits non-zero.
#define BOOST_TEST_MODULE loader
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"

namespace json = boost::json;

namespace {

json::object enabling(const char* plugin) { return {{"plugins", {{plugin, {{"enabled", true}}}}}}; }

void refused_naming(const char* plugin, const std::string& reason) {
    auto failure = aqt::expect_startup_failure(enabling(plugin));
    BOOST_TEST(failure.status.exited, failure.status.describe());
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find(reason) != std::string::npos, "expected \"" << reason << "\" in:\n" << failure.log);
    BOOST_TEST(failure.log.find("listening on") == std::string::npos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(plugin_without_the_entry_symbol_is_refused) {
    refused_naming("bad_missing_entry", "missing entry symbol aq_plugin_entry_v1");
}

BOOST_AUTO_TEST_CASE(plugin_of_another_abi_major_is_refused) {
    refused_naming("bad_abi_major", "abi_major is 2, host supports 1");
}

BOOST_AUTO_TEST_CASE(plugin_of_a_newer_abi_minor_is_refused) {
    refused_naming("bad_abi_minor", "abi_minor is 99, host supports up to 2");
}

BOOST_AUTO_TEST_CASE(plugin_whose_init_fails_stops_startup_with_its_reason) {
    refused_naming("bad_init", "bad_init refuses to start: the frobnicator is missing");
}

BOOST_AUTO_TEST_CASE(enabled_plugin_without_a_library_is_refused) {
    refused_naming("no_such_plugin", "no library at");
}

BOOST_AUTO_TEST_CASE(plugin_requiring_an_absent_provider_is_refused) {
    auto failure = aqt::expect_startup_failure(
        json::object{{"plugins", {{"testplug", {{"enabled", true}, {"requires", json::array{"absent_provider"}}}}}}});
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find("absent_provider") != std::string::npos, failure.log);
}

BOOST_AUTO_TEST_CASE(disabled_bad_plugins_are_not_loaded) {
    aqt::gateway gw(json::object{{"plugins",
                                  {{"bad_abi_major", {{"enabled", false}}},
                                   {"bad_missing_entry", {{"enabled", false}}},
                                   {"testplug", {{"enabled", true}}}}}});
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/public").status == 200);
}

BOOST_AUTO_TEST_CASE(plugin_built_against_abi_1_0_loads_and_serves) {
    // abi10plug was compiled against the frozen 1.0 header: minor 0, the 1.0 table only.
    aqt::gateway gw(enabling("abi10plug"));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto hello = c.get("/v10/hello");
    BOOST_TEST(hello.status == 200);
    BOOST_TEST(hello.body == R"({"abi":"1.0","host_minor":2,"table_covers_1_0":true})");
    std::string body(300000, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31);
    auto echo = c.post("/v10/echo", body);
    BOOST_TEST(echo.status == 200);
    BOOST_TEST((echo.body == body));
    aqt::http::request chunked;
    chunked.method = "POST";
    chunked.target = "/v1/v10/echo";
    chunked.body = body;
    chunked.chunked = true;
    chunked.chunk_size = 7000;
    auto again = c.send(chunked);
    BOOST_TEST(again.status == 200);
    BOOST_TEST((again.body == body));
}

BOOST_AUTO_TEST_CASE(plugin_built_against_abi_1_1_loads_and_serves) {
    // abi11plug was compiled against the frozen 1.1 header: minor 1, a pulled response.
    aqt::gateway gw(enabling("abi11plug"));
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    auto hello = c.get("/v11/hello");
    BOOST_TEST(hello.status == 200);
    BOOST_TEST(hello.body == R"({"abi":"1.1","host_minor":2,"table_covers_1_1":true})");
    std::string digits;
    for (int i = 0; i < 10000; ++i) digits.push_back(static_cast<char>('0' + i % 10));
    for (int round = 0; round < 2; ++round) {
        auto pulled = c.get("/v11/pulled");
        BOOST_TEST(pulled.status == 200);
        BOOST_TEST(pulled.header("content-length") == "10000");
        BOOST_TEST((pulled.body == digits));
    }
}
