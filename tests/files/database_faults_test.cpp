// The files plugin when its PostgreSQL goes away, on a server of this suite's own
// (aqt::postgres_server), through a real aqueductd: requests get 503 database_unavailable with
// retry-after (never 500), uploads in flight fail cleanly, nothing partial becomes visible,
// nothing answered 200 is lost, and once the server is back requests succeed without restarting
// the gateway. Also: slow uploads (spooled by the host) hold no session while they trickle.
#define BOOST_TEST_MODULE files_database_faults
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/database_unavailable.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/pattern.hpp"
#include "support/postgres.hpp"
#include "support/raw_connection.hpp"
#include "support/wait_until.hpp"

#include <boost/json.hpp>

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
using namespace std::chrono_literals;
using aqt::http::response;

namespace {

std::string text_of(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    BOOST_TEST_REQUIRE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
    PGresult* r = PQexec(c, sql.c_str());
    BOOST_TEST_REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK, sql << ": " << PQerrorMessage(c));
    std::string v = PQgetvalue(r, 0, 0);
    PQclear(r);
    PQfinish(c);
    return v;
}
long long count_of(const std::string& url, const std::string& sql) { return std::stoll(text_of(url, sql)); }

// Sessions of the gateway doing something: running a statement or holding a transaction open
// (the query's own session excluded).
long long busy_sessions(const std::string& url) {
    return count_of(url, "select count(*) from pg_stat_activity where datname = current_database()"
                         " and pid <> pg_backend_pid() and state <> 'idle'");
}

// The test-only pause (plugins/files/test_pause.hpp) that holds an upload after its first 1 MiB
// chunk is in the database and before it commits: long enough to stop the server under it, also
// when a loaded machine takes seconds to do so.
constexpr const char* in_flight_pause = "content_written:8000";
constexpr const char* in_flight_marker = "files: test pause at content_written";

// An upload sent in two parts over a raw connection: the first holds the request's headers and
// part of the file, the rest comes later (a slow client).
class slow_upload {
public:
    slow_upload(aqt::gateway& gw, const std::string& filename, std::string content, std::size_t first_bytes)
        : content_(std::move(content)), conn_(gw.port()) {
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", filename, content_);
        std::string body = form.body();
        std::string request = "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + gw.bearer("alice") +
                              "\r\nContent-Type: " + form.content_type() +
                              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        std::size_t head = request.size() - body.size() + (body.size() - content_.size()) / 2;
        std::size_t split = std::min(request.size() - 1, head + first_bytes);
        rest_ = request.substr(split);
        BOOST_TEST_REQUIRE(conn_.send(std::string_view(request).substr(0, split)));
    }
    // Sends the rest of the body.
    void send_rest() { sent_ = conn_.send(rest_); }
    // Sends the rest (unless send_rest did); the response, or nullopt when the gateway closed
    // the connection instead.
    std::optional<response> finish() {
        if (!sent_) send_rest();
        bool sent = sent_;
        auto r = conn_.read_response(30s);
        if (r.how != aqt::raw::ending::data) {
            BOOST_TEST((r.how == aqt::raw::ending::closed || r.how == aqt::raw::ending::reset || !sent),
                       aqt::raw::to_string(r.how));
            return std::nullopt;
        }
        return aqt::raw::parse_response(r.data);
    }
    const std::string& content() const { return content_; }

private:
    std::string content_, rest_;
    aqt::raw::connection conn_;
    bool sent_ = false;
};

// An upload sent whole (the host has spooled all of it when the handler starts) that is inside
// its handler, writing into PostgreSQL, when the test goes on: held there by the test pause.
class in_flight_upload {
public:
    in_flight_upload(aqt::gateway& gw, const std::string& filename, const std::string& content) : conn_(gw.port()) {
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", filename, content);
        std::string body = form.body();
        const std::size_t paused_before = gw.log_count(in_flight_marker);
        BOOST_TEST_REQUIRE(conn_.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + gw.bearer("alice") +
                                      "\r\nContent-Type: " + form.content_type() + "\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body));
        BOOST_TEST_REQUIRE(aqt::wait_until([&] { return gw.log_count(in_flight_marker) > paused_before; }, 20s),
                           "the upload never reached the database");
    }
    // The answer once the pause is over, or nullopt when the gateway closed the connection.
    std::optional<response> finish() {
        auto r = conn_.read_response(30s);
        if (r.how != aqt::raw::ending::data) {
            BOOST_TEST((r.how == aqt::raw::ending::closed || r.how == aqt::raw::ending::reset), aqt::raw::to_string(r.how));
            return std::nullopt;
        }
        return aqt::raw::parse_response(r.data);
    }

private:
    aqt::raw::connection conn_;
};

// Clients that keep listing, retrieving, downloading and uploading while the database comes and
// goes, and record what they were answered.
class load {
public:
    load(aqt::gateway& gw, std::string tag, std::string known_id, std::string known_content)
        : gw_(gw), tag_(std::move(tag)), known_id_(std::move(known_id)), known_content_(std::move(known_content)) {
        for (unsigned t = 0; t < 3; ++t) threads_.emplace_back([this, t] { run(t); });
    }
    ~load() { stop(); }

    void stop() {
        stopping_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    long long ok() const { return ok_; }
    long long unavailable() const { return unavailable_; }
    long long cut() const { return cut_; }
    // Everything that was neither a 200 nor exactly the 503.
    std::vector<std::string> problems() {
        std::lock_guard lk(mu_);
        return problems_;
    }
    // filename -> content of every upload attempted, and the ids of those answered 200.
    std::map<std::string, std::string> attempted() {
        std::lock_guard lk(mu_);
        return attempted_;
    }
    std::map<std::string, std::string> stored() {
        std::lock_guard lk(mu_);
        return stored_;
    }

private:
    void record(std::string problem) {
        std::lock_guard lk(mu_);
        problems_.push_back(std::move(problem));
    }

    void run(unsigned t) {
        aqt::http::client c(gw_.port());
        c.default_headers["Authorization"] = gw_.bearer("alice");
        for (unsigned i = 0; !stopping_; ++i) {
            try {
                response r;
                std::string name;
                switch (i % 4) {
                case 0: r = c.get("/v1/files"); break;
                case 1: r = c.get("/v1/files/" + known_id_); break;
                case 2:
                    r = c.get("/v1/files/" + known_id_ + "/content");
                    if (r.status == 200 && r.body != known_content_) record("a download was not byte-exact");
                    break;
                default: {
                    name = "load-" + tag_ + "-" + std::to_string(t) + "-" + std::to_string(i) + ".bin";
                    std::string content = aqt::pattern_bytes(300 * 1024 + i, t * 100000 + i);
                    {
                        std::lock_guard lk(mu_);
                        attempted_[name] = content;
                    }
                    aqt::multipart form;
                    form.field("purpose", "user_data").file("file", name, content);
                    r = c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
                    if (r.status == 200) {
                        std::lock_guard lk(mu_);
                        stored_[std::string(json::parse(r.body).at("id").as_string())] = name;
                    }
                }
                }
                if (r.status == 200) {
                    ++ok_;
                } else if (std::string why = aqt::not_database_unavailable(r); why.empty()) {
                    ++unavailable_;
                    std::this_thread::sleep_for(20ms);  // like a client backing off; spares the CPU
                } else {
                    record("unexpected answer: " + why);
                }
            } catch (const std::exception& e) {
                // A download whose 200 had begun when the database went is cut off (its status
                // cannot change any more); every other request gets an answer.
                if (i % 4 == 2 && std::string_view(e.what()).find("reading response body") != std::string_view::npos)
                    ++cut_;
                else
                    record(std::string("request failed: ") + e.what());
                c.close();
            }
        }
    }

    aqt::gateway& gw_;
    std::string tag_, known_id_, known_content_;
    std::atomic<bool> stopping_{false};
    std::atomic<long long> ok_{0}, unavailable_{0}, cut_{0};
    std::mutex mu_;
    std::map<std::string, std::string> attempted_, stored_;  // stored_: id -> filename
    std::vector<std::string> problems_;
    std::vector<std::thread> threads_;
};

struct faults_fixture {
    aqt::postgres_server pg;
    std::unique_ptr<aqt::gateway> gw;
    std::unique_ptr<aqt::http::client> alice;

    // `host` keys go to the top level of the config; `pause` sets the test pause.
    explicit faults_fixture(json::object extra = {}, json::object host = {}, bool pause = false) {
        json::object files{{"enabled", true}, {"database", pg.url()}, {"purposes", json::array{"batch", "user_data"}}};
        for (auto& [k, v] : extra) files[k] = v;
        aqt::gateway_options options;
        options.config = json::object{{"workers", 32}, {"plugins", json::object{{"files", files}}}};
        for (auto& [k, v] : host) options.config[k] = v;
        if (pause) options.env["AQ_FILES_TEST_PAUSE"] = in_flight_pause;
        gw = std::make_unique<aqt::gateway>(std::move(options));
        alice = std::make_unique<aqt::http::client>(gw->port());
        alice->default_headers["Authorization"] = gw->bearer("alice");
    }

    std::string upload(const std::string& name, const std::string& content) {
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", name, content);
        response r = alice->request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        return std::string(json::parse(r.body).at("id").as_string());
    }

    // The visible files: id -> filename.
    std::map<std::string, std::string> listed() {
        response r = alice->get("/v1/files");
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        std::map<std::string, std::string> out;
        json::value list = json::parse(r.body);
        for (auto& f : list.at("data").as_array())
            out[std::string(f.at("id").as_string())] = std::string(f.at("filename").as_string());
        return out;
    }
};

// Runs one outage (`take_down` then `bring_back`) under load and checks everything the test
// header promises.
void outage(faults_fixture& f, const std::function<void()>& take_down, const std::function<void()>& bring_back,
            const std::string& tag) {
    const std::string known_content = aqt::pattern_bytes(1500 * 1024, 7);
    const std::string known = f.upload("known-" + tag + ".bin", known_content);

    load clients(*f.gw, tag, known, known_content);
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return clients.ok() >= 20; }, 20s));

    // An upload whose handler is writing into PostgreSQL when the server goes: its body is
    // spooled whole, its first chunk is in the database, and the test pause holds it there.
    in_flight_upload in_flight(*f.gw, "inflight-" + tag + ".bin", aqt::pattern_bytes(6 << 20, 9));
    take_down();
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return clients.unavailable() >= 10; }, 20s),
                       "503s seen while the database is down: " << clients.unavailable());
    // Its pause ends while the server is down: the upload fails cleanly (503, or a closed
    // connection), and nothing of it is visible afterwards (checked below).
    std::optional<response> cut = in_flight.finish();
    if (cut) BOOST_TEST(aqt::not_database_unavailable(*cut) == "");
    BOOST_TEST_MESSAGE("the upload in flight " << (cut ? "got 503" : "was cut off"));

    bring_back();
    long long ok_before = clients.ok();
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return clients.ok() >= ok_before + 20; }, 30s),
                       "requests did not succeed again once the database was back");
    clients.stop();
    std::string problems;  // only 200 and the exact 503
    for (const auto& p : clients.problems()) problems += p + "\n";
    BOOST_TEST(problems == "");
    BOOST_TEST_MESSAGE(tag << ": " << clients.ok() << " answers 200, " << clients.unavailable() << " answers 503, "
                           << clients.cut() << " downloads cut off");

    // Nothing answered 200 is lost, nothing else is visible, every visible file is whole.
    auto visible = f.listed();
    auto stored = clients.stored();
    auto attempted = clients.attempted();
    BOOST_TEST(visible.count(known) == 1u);
    for (const auto& [id, name] : stored) BOOST_TEST(visible.count(id) == 1u, name << " answered 200 but is gone");
    for (const auto& [id, name] : visible) {
        BOOST_TEST(name != "inflight-" + tag + ".bin");
        if (!name.starts_with("load-" + tag + "-")) continue;  // the known files, an earlier outage's
        BOOST_TEST_REQUIRE(attempted.count(name) == 1u, name);
        if (!stored.count(id)) BOOST_TEST_MESSAGE(name << " was committed although its answer was 503 (in-doubt commit)");
        response dl = f.alice->get("/v1/files/" + id + "/content");
        BOOST_TEST(dl.status == 200);
        BOOST_TEST((dl.body == attempted[name]), name << " is not byte-exact");
    }
    BOOST_TEST(count_of(f.pg.url(), "select count(*) from files f where state = 'ready' and bytes <>"
                                    " coalesce((select sum(length(data)) from file_chunks c where c.file_id = f.id), 0)") ==
               0);
    // Uploads cut off by the outage could not clean up after themselves: their "writing" rows
    // (and chunks) stay invisible until their lease runs out, then the purge removes them all.
    const long long left = count_of(f.pg.url(), "select count(*) from files where state <> 'ready'");
    BOOST_TEST_MESSAGE(tag << ": rows left by writes the outage cut off: " << left);
    BOOST_TEST(aqt::wait_until([&] { return count_of(f.pg.url(), "select count(*) from files where state <> 'ready'") == 0; },
                          30s));
    BOOST_TEST(count_of(f.pg.url(), "select count(*) from file_chunks c where not exists (select 1 from files f"
                                    " where f.id = c.file_id and f.state = 'ready')") == 0);
    BOOST_TEST(f.gw->log().find("files: the database is unreachable") != std::string::npos);
    BOOST_TEST(f.gw->log().find("files: the database is reachable again") != std::string::npos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_database_stopped_then_killed_answers_503_and_recovers_without_a_restart) {
    // A short grace (longer than the test pause) and a purge every second, so the test sees
    // abandoned writes removed.
    faults_fixture f(json::object{{"pool_size", 4}, {"upload_sessions", 1}, {"session_wait_ms", 1000},
                                  {"orphan_grace_seconds", 12}, {"expiry_interval_seconds", 1}},
                     {}, true);
    outage(f, [&] { f.pg.stop(); }, [&] { f.pg.start(); }, "stopped");
    outage(f, [&] { f.pg.kill_postmaster(); }, [&] { f.pg.start(); }, "killed");
    // The same gateway process served before, during and after both outages.
    BOOST_TEST(f.gw->running());
}

// A streaming upload when PostgreSQL stops under it: the client has sent 8 MiB of 40 (the
// handler streams them, its first chunks are in the database) when the server stops, and goes
// on sending. The upload fails cleanly: the exact 503 database_unavailable envelope with
// Connection: close, or the connection closed, never a 500 or a 200; nothing of it becomes
// visible; its rows are purged; and once the server is back the same gateway takes uploads.
BOOST_AUTO_TEST_CASE(a_streaming_upload_when_the_database_stops_fails_cleanly) {
    faults_fixture f(json::object{{"pool_size", 4}, {"orphan_grace_seconds", 8}, {"expiry_interval_seconds", 1}});
    const std::string before_id = f.upload("before.bin", aqt::pattern_bytes(100000, 3));

    aqt::multipart form;
    form.field("purpose", "user_data").file("file", "streaming.bin", aqt::pattern_bytes(40 << 20, 5));
    const std::string body = form.body();
    aqt::raw::connection conn(f.gw->port());
    BOOST_TEST_REQUIRE(conn.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + f.gw->bearer("alice") +
                                 "\r\nContent-Type: " + form.content_type() + "\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 8 << 20)));
    BOOST_TEST_REQUIRE(aqt::wait_until(
                           [&] {
                               return count_of(f.pg.url(), "select count(*) from files where state = 'writing'") == 1 &&
                                      count_of(f.pg.url(), "select count(*) from file_chunks") >= 1;
                           },
                           20s),
                       "the streaming upload never reached the database");
    f.pg.stop();
    // The rest, while the handler fails: the gateway may close before taking it all.
    std::thread sender([&] { conn.send(std::string_view(body).substr(8 << 20)); });
    const auto got = conn.read_response(60s);
    sender.join();
    if (got.how == aqt::raw::ending::data) {
        const auto res = aqt::raw::parse_response(got.data);
        BOOST_TEST(aqt::not_database_unavailable(res) == "");
        BOOST_TEST(res.header("connection") == "close");
        BOOST_TEST_MESSAGE("the streaming upload got 503");
    } else {
        BOOST_TEST_MESSAGE("the streaming upload was cut off");
        BOOST_TEST((got.how == aqt::raw::ending::closed || got.how == aqt::raw::ending::reset),
                   aqt::raw::to_string(got.how));
    }

    f.pg.start();
    BOOST_TEST_REQUIRE(aqt::wait_until([&] { return f.alice->get("/v1/files").status == 200; }, 30s));
    const auto visible = f.listed();
    BOOST_TEST(visible.size() == 1u);
    BOOST_TEST(visible.count(before_id) == 1u);
    // Its "writing" row and chunks go once the lease has run out.
    BOOST_TEST(aqt::wait_until([&] { return count_of(f.pg.url(), "select count(*) from files where state <> 'ready'") == 0; },
                               30s));
    BOOST_TEST(count_of(f.pg.url(), "select count(*) from file_chunks c where not exists (select 1 from files f"
                                    " where f.id = c.file_id and f.state = 'ready')") == 0);
    f.upload("after.bin", aqt::pattern_bytes(2 << 20, 4));
    BOOST_TEST(f.listed().size() == 2u);
    BOOST_TEST(f.gw->running());
}

// A client that trickles its upload holds no database session while it trickles, so twelve of
// them beside a pool of 8 leave every session to short requests. The host spools their bodies;
// the first max_streaming_bodies of them (32 workers / 4 = 8), which sent their first 2 MiB
// fast, stream into the files plugin, which has written their "writing" rows and waits for
// bytes without a session; the other four have not reached it.
BOOST_AUTO_TEST_CASE(twelve_slow_uploads_with_pool_size_8_do_not_block_list_or_retrieve) {
    // The minimum body rate (a host feature of its own) is off: on a loaded machine the slow
    // uploads may wait here longer than its window before the test sends their rest.
    faults_fixture f(json::object{{"pool_size", 8}}, json::object{{"min_body_rate_bytes_per_s", 0}});
    const std::string known_content = aqt::pattern_bytes(100 * 1024, 3);
    const std::string known = f.upload("known.bin", known_content);

    std::vector<std::unique_ptr<slow_upload>> uploads;
    for (unsigned i = 0; i < 12; ++i)
        uploads.push_back(std::make_unique<slow_upload>(*f.gw, "slow-" + std::to_string(i) + ".bin",
                                                        aqt::pattern_bytes((3 << 20) + i, 100 + i), 2 << 20));
    // Eight rows appear as their uploads stream; give the gateway time in which it could
    // (wrongly) start more, or hold a session.
    BOOST_TEST(aqt::wait_until([&] { return count_of(f.pg.url(), "select count(*) from files where state = 'writing'") == 8; },
                               10s));
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(busy_sessions(f.pg.url()) == 0);
    BOOST_TEST(count_of(f.pg.url(), "select count(*) from files") == 9);
    BOOST_TEST(count_of(f.pg.url(), "select count(*) from files where state = 'writing'") == 8);

    // Short requests find sessions at once (a wait would end in 503 after 5 s).
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        BOOST_TEST_REQUIRE(f.alice->get("/v1/files").status == 200);
        BOOST_TEST_REQUIRE(f.alice->get("/v1/files/" + known).status == 200);
        response dl = f.alice->get("/v1/files/" + known + "/content");
        BOOST_TEST_REQUIRE(dl.status == 200);
        BOOST_TEST_REQUIRE((dl.body == known_content));
    }
    BOOST_TEST_MESSAGE("60 short requests beside 12 slow uploads took "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
                       << " ms");
    BOOST_TEST(busy_sessions(f.pg.url()) == 0);

    // Every slow upload then completes, byte-exact.
    for (auto& u : uploads) u->send_rest();
    std::set<std::string> ids;
    for (auto& u : uploads) {
        std::optional<response> r = u->finish();
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST_REQUIRE(r->status == 200, r->body);
        auto o = json::parse(r->body).as_object();
        std::string id(o.at("id").as_string());
        ids.insert(id);
        BOOST_TEST(o.at("bytes").as_int64() == static_cast<std::int64_t>(u->content().size()));
        response dl = f.alice->get("/v1/files/" + id + "/content", {});
        BOOST_TEST((dl.body == u->content()));
    }
    BOOST_TEST(ids.size() == 12u);
    BOOST_TEST(f.listed().size() == 13u);
}
