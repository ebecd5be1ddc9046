// The batches plugin when its PostgreSQL goes away, on a server of this suite's own
// (aqt::postgres_server, not the shared fixture), through a real aqueductd with a batch running:
// every batches route answers 503 database_unavailable with retry-after (never 500) while the
// server is stopped, and then killed -9; once it is back, requests succeed and the batch
// finishes without restarting the gateway, with no result lost and no recorded line sent again.
#define BOOST_TEST_MODULE batches_database_faults
#include <boost/test/unit_test.hpp>

#include "batch_input.hpp"
#include "fake_upstream.hpp"
#include "support/database_unavailable.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/postgres.hpp"

#include <boost/json.hpp>

#include <libpq-fe.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>

namespace json = boost::json;
using namespace std::chrono_literals;
using aqt::http::response;

namespace {

// custom_ids whose result is committed, read with libpq (the server must be up).
std::set<std::string> recorded_ids(const std::string& url) {
    PGconn* c = PQconnectdb(url.c_str());
    BOOST_TEST_REQUIRE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
    PGresult* r = PQexec(c, "SELECT custom_id FROM batch_requests WHERE state = 'done'");
    BOOST_TEST_REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK, PQerrorMessage(c));
    std::set<std::string> out;
    for (int i = 0; i < PQntuples(r); ++i) out.insert(PQgetvalue(r, i, 0));
    PQclear(r);
    PQfinish(c);
    return out;
}


}  // namespace

BOOST_AUTO_TEST_CASE(the_runner_and_the_routes_survive_postgres_stopping_and_being_killed) {
    aqt::postgres_server pg;
    aqt::fake_upstream up;
    up.set_latency(50ms);
    json::object upstream{{"name", "fake"}, {"base_url", up.base_url()}, {"models", json::array{"m1"}},
                          {"max_concurrency", 8}, {"timeout_seconds", 10}};
    // The outages below last a few seconds, less than a lease: the lines in flight stay this
    // host's, so their replies, kept in memory meanwhile, are recorded afterwards.
    json::object batches{{"enabled", true},          {"requires", json::array{"files"}},
                         {"upstreams", json::array{upstream}}, {"poll_interval_ms", 50},
                         {"lease_seconds", 30},      {"max_in_flight", 8},
                         {"backoff_initial_ms", 10}, {"backoff_max_ms", 100}};
    aqt::gateway gw(json::object{{"database", pg.url()},
                                 {"plugins", {{"files", {{"enabled", true}}}, {"batches", batches}}}});
    aqt::http::client alice(gw.port());
    alice.default_headers["Authorization"] = gw.bearer("alice");
    auto upload = [&](const std::string& content) {
        aqt::multipart form;
        form.field("purpose", "batch").file("file", "in.jsonl", content);
        auto r = alice.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        return std::string(r.json().at("id").as_string());
    };
    auto create = [&](const std::string& file) {
        return alice.request("POST", "/v1/batches", {{"Content-Type", "application/json"}},
                             json::serialize(json::object{{"input_file_id", file}, {"endpoint", "/v1/chat/completions"},
                                                          {"completion_window", "24h"}}));
    };
    std::string input;
    for (int i = 0; i < 600; ++i) input += aqt::line("k" + std::to_string(i));
    auto created = create(upload(input));
    BOOST_TEST_REQUIRE(created.status == 200, created.body);
    const std::string id(created.json().at("id").as_string());
    const std::string spare_file = upload(aqt::line("spare"));
    auto completed = [&] {
        auto r = alice.get("/v1/batches/" + id);
        return r.status == 200 ? r.json().at("request_counts").at("completed").as_int64() : -1;
    };

    std::map<std::string, int> never_again;  // recorded before an outage: their sends so far
    long long last = 0;
    for (const char* how : {"stopped", "killed -9"}) {
        BOOST_TEST_CONTEXT("postgres " << how) {
            long long goal = last + 100;
            while (completed() < goal) std::this_thread::sleep_for(20ms);
            // Recorded first, counted second: a line is sent before its reply is recorded, so every
            // send of a recorded line is in the counts (counted first, lines sent and recorded in
            // between would look sent again).
            const auto recorded = recorded_ids(pg.url());
            auto counts = up.counts();
            for (const auto& cid : recorded) never_again[cid] = counts[cid];
            if (std::string(how) == "stopped") pg.stop();
            else pg.kill_postmaster();

            for (const auto& [what, r] : {std::pair{"get", alice.get("/v1/batches/" + id)},
                                          std::pair{"list", alice.get("/v1/batches")},
                                          std::pair{"cancel", alice.request("POST", "/v1/batches/batch_nope/cancel")},
                                          std::pair{"create", create(spare_file)}})
                BOOST_TEST(aqt::not_database_unavailable(r).empty(), what << ": " << aqt::not_database_unavailable(r));
            std::this_thread::sleep_for(2s);  // replies keep arriving; none can be recorded
            pg.start();

            // Back without restarting aqueductd: requests succeed, the runner goes on.
            auto deadline = std::chrono::steady_clock::now() + 30s;
            while (completed() < 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
            last = completed();
            BOOST_TEST_REQUIRE(last >= goal);
            BOOST_TEST(alice.get("/v1/batches").status == 200);
        }
    }
    json::value done;
    auto deadline = std::chrono::steady_clock::now() + 120s;
    for (;;) {
        auto r = alice.get("/v1/batches/" + id);
        if (r.status == 200 && r.json().at("status") == "completed") {
            done = r.json();
            break;
        }
        BOOST_TEST_REQUIRE((std::chrono::steady_clock::now() < deadline), r.body);
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(done.at("request_counts") == json::parse(R"({"total":600,"completed":600,"failed":0})"));
    auto out = alice.get("/v1/files/" + std::string(done.at("output_file_id").as_string()) + "/content");
    BOOST_TEST_REQUIRE(out.status == 200);
    std::set<std::string> seen;
    for (auto& l : aqt::split_lines(out.body))
        BOOST_TEST(seen.insert(std::string(json::parse(l).at("custom_id").as_string())).second);
    BOOST_TEST(seen.size() == 600u);  // no result lost
    auto counts = up.counts();
    BOOST_TEST(never_again.size() >= 200u);
    for (const auto& [cid, n] : never_again) BOOST_TEST(counts[cid] == n, cid << " was sent again");
    int resent = 0;
    for (const auto& [cid, n] : counts) resent += n - 1;
    BOOST_TEST(resent == 0);  // the replies that waited out the outages were recorded, not re-sent
    BOOST_TEST(gw.log().find("batches: the database is unreachable") != std::string::npos);
}
