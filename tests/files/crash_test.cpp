// kill -9 of aqueductd in the middle of an upload and in the middle of its commit, on a content
// store that lives outside the database (built once per store, support/store_under_test.hpp):
// while the gateway is dead the store holds exactly what the protocol of content_store.hpp says
// a crash leaves (nothing visible; at most content that a "writing" row points at), and after a
// restart the purge removes it, so the store holds exactly the files that were answered 200.
//
// The crash lands at a test-only pause point (plugins/files/test_pause.hpp), never by timing:
//   mid-upload  filesystem: content_written (1 MiB is in the unnamed O_TMPFILE file)
//               s3:         s3_part_sent (past the first 8 MiB: a streamed PUT is under way, the
//                           default with Swift; or, with large_objects "multipart", a multipart
//                           upload exists with its first part)
//   mid-commit  content_sealed (the content is durable under its key, the row not yet ready)
#define BOOST_TEST_MODULE files_crash
#include <boost/test/unit_test.hpp>

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/pattern.hpp"
#include "support/raw_connection.hpp"
#include "support/store_under_test.hpp"
#include "support/wait_until.hpp"

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <thread>

namespace json = boost::json;
using namespace std::chrono_literals;
using aqt::http::response;

namespace {

// A gateway on the store under test whose uploads stop at `pause` (the test pause's syntax,
// "<point>:<ms>[@<n>]"), with a short grace and a purge every second so that what a crash
// leaves is removed within the test.
struct crash_fixture {
    aqt::store_under_test where;  // this run's (AQ_TEST_STORE, AQ_TEST_POSTGRES)
    std::unique_ptr<aqt::gateway> gw;
    std::unique_ptr<aqt::http::client> alice;

    // `large_objects`: the s3 store's setting, when not its default.
    explicit crash_fixture(const std::string& pause, const std::string& large_objects = "") {
        aqt::gateway_options options;
        json::object files = where.files_config(json::object{{"enabled", true},
                                                              {"purposes", json::array{"batch", "user_data"}},
                                                              {"orphan_grace_seconds", 3},
                                                              {"expiry_interval_seconds", 1}});
        if (!large_objects.empty()) files["s3"].as_object()["large_objects"] = large_objects;
        options.config = json::object{{"plugins", json::object{{"files", files}}}};
        options.env["AQ_FILES_TEST_PAUSE"] = pause;
        gw = std::make_unique<aqt::gateway>(std::move(options));
        where.attach(*gw);
        BOOST_TEST_MESSAGE("files on " << where.label());
        connect();
    }

    void connect() {
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

    // Sends an upload, waits until its handler is at `point`, and kills the gateway there. The
    // client sees its connection end without an answer.
    void kill_at(const std::string& point, const std::string& name, const std::string& content) {
        aqt::multipart form;
        form.field("purpose", "user_data").file("file", name, content);
        std::string body = form.body();
        aqt::raw::connection conn(gw->port());
        BOOST_TEST_REQUIRE(conn.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + gw->bearer("alice") +
                                     "\r\nContent-Type: " + form.content_type() + "\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body));
        BOOST_TEST_REQUIRE(gw->wait_for_log("files: test pause at " + point, 30s), gw->log());
        gw->kill9();
        auto r = conn.read_response(10s);
        BOOST_TEST((r.how == aqt::raw::ending::closed || r.how == aqt::raw::ending::reset), aqt::raw::to_string(r.how));
    }

    // The ids and filenames that GET /v1/files lists.
    std::map<std::string, std::string> listed() {
        response r = alice->get("/v1/files");
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        std::map<std::string, std::string> out;
        json::value list = json::parse(r.body);
        for (auto& f : list.at("data").as_array())
            out[std::string(f.at("id").as_string())] = std::string(f.at("filename").as_string());
        return out;
    }

    long long count(const std::string& sql) const { return std::stoll(aqt::sql_value(where.database(), sql)); }
    std::string value(const std::string& sql) const { return aqt::sql_value(where.database(), sql); }
};

void expect_not_found(const response& r, const std::string& id) {
    BOOST_TEST(r.status == 404, r.body);
    BOOST_TEST(json::parse(r.body) == json::parse(R"({"error": {"message": "No such File object: )" + id +
                                                   R"(", "type": "invalid_request_error", "param": "id",)"
                                                   R"( "code": null}})"),
               r.body);
}

// After a restart: the purge leaves exactly the known file, which is whole, and the gateway
// takes new uploads. `crashed` is the id of the upload that was killed, when it got one.
void expect_recovered(crash_fixture& f, const std::string& known, const std::string& known_content,
                      const std::string& crashed) {
    f.gw->restart();
    f.connect();
    BOOST_TEST(aqt::wait_until([&] { return f.where.rows() == 1 && f.where.content_objects() == 1u &&
                                       f.where.unfinished_uploads() == 0u; },
                          30s),
               "rows " << f.where.rows() << ", contents " << f.where.content_objects() << ", unfinished uploads "
                       << f.where.unfinished_uploads());
    BOOST_TEST(f.count("select count(*) from files where id = '" + known + "' and state = 'ready'") == 1);
    BOOST_TEST((f.listed() == std::map<std::string, std::string>{{known, "known.bin"}}));
    response dl = f.alice->get("/v1/files/" + known + "/content");
    BOOST_TEST(dl.status == 200);
    BOOST_TEST((dl.body == known_content));
    if (!crashed.empty()) {
        expect_not_found(f.alice->get("/v1/files/" + crashed), crashed);
        expect_not_found(f.alice->get("/v1/files/" + crashed + "/content"), crashed);
    }
    // Still taking uploads (small ones: below the pause points' thresholds).
    const std::string after = f.upload("after.bin", aqt::pattern_bytes(2000, 5));
    BOOST_TEST(f.listed().size() == 2u);
    BOOST_TEST(f.where.content_objects() == 2u);
    BOOST_TEST(f.alice->get("/v1/files/" + after + "/content").body == aqt::pattern_bytes(2000, 5));
}

}  // namespace

// One kill -9 mid-upload; `large_objects` as crash_fixture's.
void kill_mid_upload_and_recover(const std::string& large_objects) {
    const bool s3 = aqt::suite_store() == "s3";
    // s3: more than the first 8 MiB (part_bytes' default) has come, so the upload is past the
    // one-PUT buffer: a streamed PUT has its first block, or the first part is sent.
    const std::string point = s3 ? "s3_part_sent" : "content_written";
    crash_fixture f(point + ":60000", large_objects);
    const bool multipart = large_objects == "multipart";
    if (s3)
        BOOST_TEST(f.gw->log().find(multipart ? "large contents go up as multipart uploads"
                                              : "large contents go up as one streamed PUT") != std::string::npos,
                   f.gw->log());
    const std::string known_content = aqt::pattern_bytes(1000, 1);
    const std::string known = f.upload("known.bin", known_content);
    f.kill_at(point, "crashed.bin", aqt::pattern_bytes(12 << 20, 2));

    // What the dead gateway left: nothing of the upload in the store's visible content.
    BOOST_TEST(f.where.content_objects() == 1u);
    if (s3) {
        // The intent row (recorded before the first request), and, for a multipart upload, the
        // unfinished upload it points at; a streamed PUT that broke off left nothing.
        BOOST_TEST(f.where.rows() == 2);
        BOOST_TEST(f.count("select count(*) from files where state = 'writing' and store = 's3'") == 1);
        BOOST_TEST(f.where.unfinished_uploads() == (multipart ? 1u : 0u));
    } else {
        // The unnamed file went with the process; no row was needed for it.
        BOOST_TEST(f.where.rows() == 1);
    }
    const std::string crashed = f.value("select id from files where state = 'writing'");
    expect_recovered(f, known, known_content, crashed);
    if (s3) BOOST_TEST(f.gw->log().find("purged 1 expired file(s) and abandoned write(s)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(kill_9_mid_upload_leaves_nothing_visible_and_no_orphan_after_restart) {
    kill_mid_upload_and_recover("");
    // The s3 store's other way up for large contents (the default with servers that do not
    // take a streamed PUT), by its setting.
    if (aqt::suite_store() == "s3") kill_mid_upload_and_recover("multipart");
}

BOOST_AUTO_TEST_CASE(kill_9_mid_commit_leaves_nothing_visible_and_the_purge_removes_the_orphan) {
    // The known file's commit is the first arrival at content_sealed, the killed one the second.
    crash_fixture f("content_sealed:60000@2");
    const std::string known_content = aqt::pattern_bytes(1000, 1);
    const std::string known = f.upload("known.bin", known_content);
    f.kill_at("content_sealed", "crashed.bin", aqt::pattern_bytes(3 << 20, 2));

    // The content is whole and named in the store, and a "writing" row points at it: invisible,
    // and findable by the purge.
    BOOST_TEST(f.where.content_objects() == 2u);
    BOOST_TEST(f.where.unfinished_uploads() == 0u);
    BOOST_TEST(f.where.rows() == 2);
    const std::string crashed = f.value("select id from files where state = 'writing'");
    BOOST_TEST_REQUIRE(!crashed.empty());
    BOOST_TEST(f.value("select content_key from files where id = '" + crashed + "'") == crashed);
    BOOST_TEST(f.value("select store from files where id = '" + crashed + "'") == f.where.name());
    if (f.where.name() == "filesystem")
        BOOST_TEST(std::filesystem::file_size(f.where.folder() / crashed.substr(5, 2) / crashed) == (3u << 20));

    expect_recovered(f, known, known_content, crashed);
    BOOST_TEST(f.gw->log().find("purged 1 expired file(s) and abandoned write(s)") != std::string::npos);
}
