// Reload without a restart: SIGHUP reads the config file again. A removed token stops working
// at once, a new one works at once, requests in flight are not dropped; a config with errors is
// refused with the words of a refusal at start and the running config stays; keys that need a
// restart say so; log_level and access_log change at once.
#define BOOST_TEST_MODULE reload
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/prometheus_text.hpp"
#include "testplug.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

void write_config(const aqt::gateway& gw, const std::string& text) {
    std::ofstream out(gw.config_path(), std::ios::trunc);
    out << text;
}

// Rewrites the config file, sends SIGHUP and waits until the gateway has handled it (one more
// "config reloaded" or "reload refused" line).
void reload(aqt::gateway& gw, const std::string& text) {
    write_config(gw, text);
    const std::size_t before = gw.log_count("config reloaded") + gw.log_count("reload refused");
    gw.signal(SIGHUP);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (gw.log_count("config reloaded") + gw.log_count("reload refused") == before &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    BOOST_TEST_REQUIRE(gw.log_count("config reloaded") + gw.log_count("reload refused") == before + 1, gw.log());
}

void reload(aqt::gateway& gw, const json::object& cfg) { reload(gw, json::serialize(cfg)); }

// The config with alice's token replaced by dave's.
json::object without_alice_with(const aqt::gateway& gw, const std::string& dave_token) {
    json::object cfg = gw.config();
    json::array tokens;
    for (const auto& t : cfg.at("tokens").as_array())
        if (t.as_object().at("name") != "alice") tokens.push_back(t);
    tokens.push_back(json::object{{"name", "dave"}, {"user", "dave"}, {"sha256", aqt::sha256_hex(dave_token)}});
    cfg["tokens"] = std::move(tokens);
    return cfg;
}

int whoami(const aqt::gateway& gw, const std::string& token) {
    aqt::http::client c(gw.port());
    return c.get("/whoami", {{"Authorization", "Bearer " + token}}).status;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_removed_token_stops_and_a_new_one_works_at_once) {
    aqt::gateway gw(aqt::with_testplug());
    const std::string dave = "dave-" + aqt::random_hex(16);
    BOOST_TEST(whoami(gw, gw.token("alice")) == 200);
    BOOST_TEST(whoami(gw, dave) == 401);
    // A keep-alive connection opened before the reload sees the new tokens on its next request.
    aqt::http::client kept(gw.port());
    BOOST_TEST(kept.get("/whoami", {{"Authorization", gw.bearer("alice")}}).status == 200);

    reload(gw, without_alice_with(gw, dave));
    BOOST_TEST(gw.log().find("config reloaded: 4 token(s)") != std::string::npos, gw.log());
    BOOST_TEST(kept.get("/whoami", {{"Authorization", gw.bearer("alice")}}).status == 401);
    BOOST_TEST(kept.connections() == 1);
    BOOST_TEST(whoami(gw, gw.token("alice")) == 401);
    aqt::http::client c(gw.port());
    auto r = c.get("/whoami", {{"Authorization", "Bearer " + dave}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.json().at("user") == "dave");
    BOOST_TEST(whoami(gw, gw.token("bob")) == 200);
    // The reload log names no token and no digest.
    BOOST_TEST(gw.log().find(aqt::sha256_hex(dave)) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(requests_in_flight_finish_under_the_token_they_started_with) {
    aqt::gateway gw(aqt::with_testplug());
    auto slow = std::async(std::launch::async, [&] {
        aqt::http::client c(gw.port());
        return c.get("/slow?ms=1500", {{"Authorization", gw.bearer("alice")}});
    });
    BOOST_TEST_REQUIRE(gw.wait_for_log("slow request started"));
    reload(gw, without_alice_with(gw, "dave-" + aqt::random_hex(16)));
    BOOST_TEST(whoami(gw, gw.token("alice")) == 401);
    auto r = slow.get();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"slept_ms":1500})");
}

BOOST_AUTO_TEST_CASE(a_config_with_errors_is_refused_with_the_words_of_a_refused_start) {
    aqt::gateway gw(aqt::with_testplug());
    const json::object good = gw.config();
    json::object bad = good;
    bad["workers"] = "many";
    bad["tokens"] = json::array{};  // would lock everyone out, were it accepted

    // What a start with that config says.
    aqt::gateway_options as_is;
    as_is.config = bad;
    as_is.fill_defaults = false;
    const auto refused_start = aqt::expect_startup_failure(as_is);
    const std::string reason = "invalid config: workers: expected an integer from 1 to 4096";
    BOOST_TEST_REQUIRE(refused_start.log.find(reason) != std::string::npos, refused_start.log);

    reload(gw, bad);
    BOOST_TEST(gw.log().find(reason) != std::string::npos, gw.log());
    BOOST_TEST(gw.log().find("reload refused: the running config stays in force") != std::string::npos);
    BOOST_TEST(whoami(gw, gw.token("alice")) == 200);

    reload(gw, "{\"listen\": ");
    BOOST_TEST(gw.log().find("invalid config: config: invalid JSON at line 1") != std::string::npos, gw.log());
    BOOST_TEST(whoami(gw, gw.token("alice")) == 200);

    std::filesystem::remove(gw.config_path());
    gw.signal(SIGHUP);
    BOOST_TEST(gw.wait_for_log("invalid config: cannot read config " + gw.config_path().string()));
    BOOST_TEST(whoami(gw, gw.token("alice")) == 200);

    reload(gw, good);
    aqt::http::client c(gw.port());
    const auto metrics = aqt::prometheus::parse(c.get("/metrics", {{"Authorization", gw.bearer("alice")}}).body);
    BOOST_TEST(aqt::prometheus::value(metrics, R"(aqueduct_config_reloads_total{result="refused"})") == 3);
    BOOST_TEST(aqt::prometheus::value(metrics, R"(aqueduct_config_reloads_total{result="ok"})") == 1);
}

BOOST_AUTO_TEST_CASE(keys_that_need_a_restart_say_so_and_keep_their_value) {
    aqt::gateway gw(aqt::with_testplug({{"max_requests_per_principal", 1}}));
    json::object cfg = gw.config();
    cfg["max_requests_per_principal"] = 5;
    cfg["workers"] = 3;
    cfg.at("plugins").as_object().at("testplug").as_object()["extra"] = true;
    reload(gw, cfg);
    BOOST_TEST(gw.log().find("max_requests_per_principal changed: needs a restart (the running value stays in force)") !=
               std::string::npos, gw.log());
    BOOST_TEST(gw.log().find("workers changed: needs a restart") != std::string::npos);
    BOOST_TEST(gw.log().find("plugins.testplug changed: needs a restart") != std::string::npos);
    BOOST_TEST(gw.log().find("tokens changed") == std::string::npos);
    // The running limit is still 1: a second request of alice's during a slow one gets 429.
    auto slow = std::async(std::launch::async, [&] {
        aqt::http::client c(gw.port());
        return c.get("/slow?ms=4000", {{"Authorization", gw.bearer("alice")}}).status;
    });
    BOOST_TEST_REQUIRE(gw.wait_for_log("slow request started"));
    BOOST_TEST(whoami(gw, gw.token("alice")) == 429);
    BOOST_TEST(slow.get() == 200);
}

BOOST_AUTO_TEST_CASE(log_level_and_access_log_change_at_once) {
    aqt::gateway gw(aqt::with_testplug());
    aqt::http::client c(gw.port());
    c.default_headers["Authorization"] = gw.bearer("alice");
    BOOST_TEST(c.get("/slow?ms=1").status == 200);
    BOOST_TEST(gw.wait_for_log("slow request started: 1 ms"));

    json::object cfg = gw.config();
    cfg["log_level"] = "warn";
    cfg["access_log"] = "access.log";
    reload(gw, cfg);
    BOOST_TEST(gw.log().find("access_log changed") == std::string::npos);
    BOOST_TEST(c.get("/slow?ms=2", {{"x-request-id", "after-reload"}}).status == 200);
    const auto file = gw.dir() / "access.log";
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    std::string text;
    while (text.find("after-reload") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        std::ifstream in(file);
        text.assign(std::istreambuf_iterator<char>(in), {});
        std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST(text.find(R"("request_id":"after-reload")") != std::string::npos, text);
    // An INFO line of the plugin is no longer written.
    BOOST_TEST(gw.log().find("slow request started: 2 ms") == std::string::npos);
}
