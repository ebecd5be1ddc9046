// The s3 store's retries as an operator sees them, through a real aqueductd whose S3 endpoint is
// a fault-injecting proxy (tests/s3/fault_proxy.hpp) in front of the real Swift + s3api server:
// each retried request is a warning line and a count in aqueduct_files_s3_retries_total by the
// kind of failure; retries that run out answer 503 store_unavailable and store nothing.
#define BOOST_TEST_MODULE files_s3_retries
#include <boost/test/unit_test.hpp>

#include "../s3/fault_proxy.hpp"

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/pattern.hpp"
#include "support/raw_connection.hpp"
#include "support/prometheus_text.hpp"
#include "support/s3.hpp"

#include <boost/json.hpp>

#include <string>
#include <thread>

namespace json = boost::json;
namespace prom = aqt::prometheus;

namespace {

struct s3_gateway {
    aq::s3::client_config swift = aqt::s3_endpoint();
    aqt::fault_proxy proxy{static_cast<unsigned short>(std::stoi(swift.endpoint.substr(swift.endpoint.rfind(':') + 1)))};
    aqt::gateway gw{json::object{
        {"plugins",
         json::object{{"files",
                       json::object{{"enabled", true},
                                    {"purposes", json::array{"batch", "user_data"}},
                                    {"store", "s3"},
                                    {"s3", json::object{{"endpoint", "http://127.0.0.1:" + std::to_string(proxy.port())},
                                                        {"bucket", swift.bucket},
                                                        {"region", swift.region},
                                                        {"addressing", "path"},
                                                        {"access_key", swift.access_key},
                                                        {"secret_key", swift.secret_key},
                                                        {"max_attempts", 3}}}}}}}}};
    aqt::http::client alice{gw.port()};

    s3_gateway() { alice.default_headers["Authorization"] = gw.bearer("alice"); }

    aqt::http::response upload(const std::string& filename) {
        aqt::multipart form;
        form.field("purpose", "batch");
        form.file("file", filename,
                  R"({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}})"
                  "\n");
        return alice.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
    }

    // An upload larger than a part (8 MiB): past its first part it goes on as one streamed PUT.
    aqt::http::response upload_large(const std::string& filename, const std::string& content) {
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", filename, content);
        return alice.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
    }

    prom::samples scrape() {
        auto r = alice.get("/metrics");
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        BOOST_TEST(prom::promtool_problems(r.body) == "");
        return prom::parse(r.body);
    }

    double files_listed() { return static_cast<double>(alice.get("/v1/files").json().at("data").as_array().size()); }
};

const std::string throttled = R"(aqueduct_files_s3_retries_total{kind="throttled"})";
const std::string server = R"(aqueduct_files_s3_retries_total{kind="server"})";
const std::string network = R"(aqueduct_files_s3_retries_total{kind="network"})";
const std::string rejected = R"(aqueduct_files_s3_retries_total{kind="rejected"})";

}  // namespace

BOOST_FIXTURE_TEST_SUITE(s3_retries, s3_gateway)

BOOST_AUTO_TEST_CASE(every_kind_is_exported_from_the_start_at_zero) {
    const auto now = scrape();
    for (const auto& series : {throttled, server, network, rejected}) {
        BOOST_TEST(now.count(series) == 1u, series);
        BOOST_TEST(prom::value(now, series) == 0);
    }
    BOOST_TEST(now.count(R"(aqueduct_files_s3_retries_total{kind="not_found"})") == 0u);  // never retried
}

BOOST_AUTO_TEST_CASE(slow_down_answers_and_dropped_connections_are_retried_and_counted_by_kind) {
    const auto before = scrape();
    proxy.close_all();  // the startup's idle connection: the next request opens a new one
    proxy.answer_next(2, aqt::slow_down_response());
    const auto first = upload("throttled.jsonl");
    BOOST_TEST(first.status == 200, first.body);
    BOOST_TEST(gw.wait_for_log("failed (attempt 2), retrying in"));
    proxy.close_all();
    proxy.drop_next(1);
    const auto second = upload("dropped.jsonl");
    BOOST_TEST(second.status == 200, second.body);

    const auto after = scrape();
    BOOST_TEST(prom::delta(before, after, throttled) == 2);
    BOOST_TEST(prom::delta(before, after, network) == 1);
    BOOST_TEST(prom::delta(before, after, server) == 0);
    BOOST_TEST(prom::delta(before, after, rejected) == 0);
    BOOST_TEST(gw.log().find("files: s3 PUT object") != std::string::npos, gw.log());
    BOOST_TEST(files_listed() == 2);
}

BOOST_AUTO_TEST_CASE(retries_that_run_out_answer_503_store_unavailable_and_keep_nothing) {
    const auto before = scrape();
    proxy.close_all();
    proxy.answer_next(3, aqt::slow_down_response());  // max_attempts 3: every attempt is refused
    const auto r = upload("refused.jsonl");
    BOOST_TEST(r.status == 503, r.body);
    const auto error = r.json().at("error").as_object();
    BOOST_TEST(error.at("code").as_string() == "store_unavailable");
    BOOST_TEST(error.at("message").as_string() == "The file store is unavailable; retry later.");
    BOOST_TEST(r.header("retry-after") == "1");
    const auto after = scrape();
    BOOST_TEST(prom::delta(before, after, throttled) == 2);  // attempts 1 and 2 were retried
    BOOST_TEST(files_listed() == 0);
    // The next upload, with S3 answering again, is stored.
    BOOST_TEST(upload("after.jsonl").status == 200);
    BOOST_TEST(files_listed() == 1);
}

BOOST_AUTO_TEST_CASE(a_connection_cut_mid_streamed_put_answers_503_and_keeps_nothing) {
    // Swift takes a streamed PUT, so the store asked at start and streams large contents.
    BOOST_TEST(gw.log().find("files: s3: the server takes a streamed PUT") != std::string::npos, gw.log());
    const std::string content = aqt::pattern_bytes(12 << 20, 7);
    proxy.close_all();
    proxy.cut_request_after(10 << 20);  // past the first 8 MiB: the body has started, and is lost
    const auto r = upload_large("cut.bin", content);
    BOOST_TEST(r.status == 503, r.body);
    BOOST_TEST(r.json() == json::parse(R"({"error": {"message": "The file store is unavailable; retry later.",)"
                                       R"( "type": "server_error", "param": null, "code": "store_unavailable"}})"),
               r.body);
    BOOST_TEST(r.header("retry-after") == "1");
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(gw.log().find("not retried: the body source cannot start over") != std::string::npos, gw.log());
    BOOST_TEST(files_listed() == 0);
    aq::s3::client direct(swift);
    BOOST_TEST(direct.list_all_objects("files/").empty());
    BOOST_TEST(direct.list_multipart_uploads("files/").uploads.empty());
    // The same upload again, with the connection left alone, is stored whole.
    const auto again = upload_large("again.bin", content);
    BOOST_TEST_REQUIRE(again.status == 200, again.body);
    const std::string id(again.json().at("id").as_string());
    BOOST_TEST(alice.get("/v1/files/" + id + "/content").body == content);
    BOOST_TEST(direct.list_all_objects("files/").size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_slow_upload_keeps_its_streamed_put_fed_past_the_servers_idle_timeout) {
    // This Swift drops a request body when one of its 64 KiB reads waits 10 s (client_timeout,
    // tests/support/s3.sh). 9 MiB come at once, so the streamed PUT is under way with them;
    // the last 240 KiB trickle in at 16 KiB a second for 15 s: never a whole 1 MiB block, so
    // only bytes passed on as they come keep Swift reading.
    const std::string content = aqt::pattern_bytes((9 << 20) + (512 << 10), 11);
    aqt::multipart form;
    form.field("purpose", "user_data").file("file", "slow.bin", content);
    const std::string body = form.body();
    const std::size_t trickled = 240 << 10, step = 16 << 10;
    aqt::raw::connection conn(gw.port());
    BOOST_TEST_REQUIRE(conn.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + gw.bearer("alice") +
                                 "\r\nContent-Type: " + form.content_type() + "\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() - trickled)));
    for (std::size_t at = body.size() - trickled; at < body.size(); at += step) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        BOOST_TEST_REQUIRE(conn.send(std::string_view(body).substr(at, step)));
    }
    const auto r = conn.read_response(std::chrono::seconds(30));
    BOOST_TEST_REQUIRE(r.data.rfind("HTTP/1.1 200 ", 0) == 0u, r.data.substr(0, 400) << "\n" << gw.log());
    const json::value file = json::parse(r.data.substr(r.data.find("\r\n\r\n") + 4));
    const std::string id(file.at("id").as_string());
    BOOST_TEST(file.at("bytes").as_int64() == static_cast<std::int64_t>(content.size()));
    BOOST_TEST(alice.get("/v1/files/" + id + "/content").body == content);
}

BOOST_AUTO_TEST_SUITE_END()
