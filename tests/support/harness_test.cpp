// The harness itself: what every integration suite relies on.
#define BOOST_TEST_MODULE support_harness
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"

#include <boost/json.hpp>

#include <csignal>

namespace json = boost::json;

namespace {
json::object testplug_config() { return {{"plugins", {{"testplug", {{"enabled", true}}}}}}; }
}  // namespace

BOOST_AUTO_TEST_CASE(gateway_parses_the_port_it_listens_on) {
    aqt::gateway gw;
    BOOST_TEST(gw.port() != 0);
    BOOST_TEST(gw.log().find("listening on http://127.0.0.1:" + std::to_string(gw.port())) != std::string::npos);
    aqt::http::client c(gw.port());
    BOOST_TEST(c.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(generated_tokens_authenticate_as_their_principals) {
    aqt::gateway gw(testplug_config());
    aqt::http::client c(gw.port());
    auto alice = c.get("/whoami", {{"Authorization", gw.bearer("alice")}});
    BOOST_TEST(alice.status == 200);
    BOOST_TEST(alice.json() == json::parse(R"({"token_name":"alice","user":"alice","team":null})"));
    auto carol = c.get("/whoami", {{"Authorization", gw.bearer("carol")}});
    BOOST_TEST(carol.json() == json::parse(R"({"token_name":"carol","user":"carol","team":"research"})"));
    BOOST_TEST(gw.token("alice") != gw.token("bob"));
    BOOST_CHECK_THROW(gw.token("mallory"), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(config_holds_only_token_hashes) {
    aqt::gateway gw;
    auto& tokens = gw.config().at("tokens").as_array();
    BOOST_TEST(tokens.size() == 4u);  // alice, bob, carol, research-user
    for (auto& t : tokens) {
        std::string name(t.at("name").as_string());
        BOOST_TEST(std::string(t.at("sha256").as_string()) == aqt::sha256_hex(gw.token(name)));
        BOOST_TEST(json::serialize(gw.config()).find(gw.token(name)) == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(restart_keeps_config_and_tokens) {
    aqt::gateway gw(testplug_config());
    auto before = gw.token("bob");
    gw.restart();
    aqt::http::client c(gw.port());
    BOOST_TEST(gw.token("bob") == before);
    BOOST_TEST(c.get("/whoami", {{"Authorization", gw.bearer("bob")}}).status == 200);
}

BOOST_AUTO_TEST_CASE(stop_reports_the_exit_status) {
    aqt::gateway gw;
    auto st = gw.stop();
    BOOST_TEST(st.exited);
    BOOST_TEST(st.code == 0);
    BOOST_TEST(!gw.running());
}

BOOST_AUTO_TEST_CASE(kill9_reports_the_signal) {
    aqt::gateway gw;
    gw.kill9();
    auto st = gw.wait_exit();
    BOOST_TEST(!st.exited);
    BOOST_TEST(st.signal == SIGKILL);
}

BOOST_AUTO_TEST_CASE(startup_failure_returns_status_and_log) {
    auto failure = aqt::expect_startup_failure(json::object{{"no_such_key", 1}});
    BOOST_TEST(failure.status.exited);
    BOOST_TEST(failure.status.code != 0);
    BOOST_TEST(failure.log.find("no_such_key") != std::string::npos, failure.log);
}

BOOST_AUTO_TEST_CASE(expecting_a_failure_of_a_healthy_config_throws) {
    BOOST_CHECK_THROW(aqt::expect_startup_failure(json::object{}), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(hash_token_matches_the_harness_digest) {
    auto r = aqt::run_aqueductd({"hash-token"}, "s3cret\n");
    BOOST_TEST(r.status.success());
    BOOST_TEST(r.output == aqt::sha256_hex("s3cret") + "\n");
}

BOOST_AUTO_TEST_CASE(multipart_body_has_the_exact_wire_format) {
    aqt::multipart form("XyZ");
    form.field("purpose", "batch").file("file", "a.jsonl", "{}\n", "application/jsonl");
    BOOST_TEST(form.content_type() == "multipart/form-data; boundary=XyZ");
    BOOST_TEST(form.body() ==
               "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
               "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n"
               "Content-Type: application/jsonl\r\n\r\n{}\n\r\n--XyZ--\r\n");
}

BOOST_AUTO_TEST_CASE(sha256_of_abc_is_the_fips_vector) {
    BOOST_TEST(aqt::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    aqt::sha256 h;
    h.update("a");
    h.update("bc");
    BOOST_TEST(h.hex() == aqt::sha256_hex("abc"));
}
