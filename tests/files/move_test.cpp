// Moving files between content stores with aqueduct-files beside a running aqueductd (mover.hpp):
// a deployment filled in the database store switches to the filesystem store, reads every file
// from where it is, moves them (interrupted by kill -9 at a copy that is verified but not yet
// switched, then resumed), and reads them again; downloads keep working throughout, one of them
// across the moment its content moves.
#define BOOST_TEST_MODULE files_move
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/pattern.hpp"
#include "support/raw_connection.hpp"
#include "support/store_under_test.hpp"
#include "support/wait_until.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace json = boost::json;
using namespace std::chrono_literals;
using aqt::http::response;

namespace {

struct moving_gateway {
    std::unique_ptr<aqt::gateway> gw;
    std::unique_ptr<aqt::http::client> alice;
    std::string database;
    std::filesystem::path folder;
    std::map<std::string, std::string> contents;  // id -> bytes

    moving_gateway() {
        // Short leases and a purge every second, so that the abandoned copy of the interrupted
        // move is removed within the test. No minimum rate: one download below pauses on purpose.
        json::object files{{"enabled", true},
                           {"purposes", json::array{"batch", "user_data"}},
                           {"store", "database"},
                           {"orphan_grace_seconds", 3},
                           {"expiry_interval_seconds", 1}};
        gw = std::make_unique<aqt::gateway>(
            json::object{{"min_body_rate_bytes_per_s", 0}, {"plugins", json::object{{"files", files}}}});
        database = "sqlite:" + (gw->dir() / "aqueduct.db").string();
        folder = gw->dir() / "files";
        alice = std::make_unique<aqt::http::client>(gw->port());
        alice->default_headers["Authorization"] = gw->bearer("alice");
    }

    std::string upload(const std::string& name, const std::string& content, const std::string& purpose = "user_data") {
        aqt::multipart form;
        form.field("purpose", purpose).file("file", name, content);
        response r = alice->request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        std::string id(json::parse(r.body).at("id").as_string());
        contents[id] = content;
        return id;
    }

    // Every file, byte-exact, with its ETag.
    void read_all() {
        for (const auto& [id, content] : contents) {
            response r = alice->get("/v1/files/" + id + "/content");
            BOOST_TEST_REQUIRE(r.status == 200, id << ": " << r.body);
            BOOST_TEST((r.body == content), id << " is not byte-exact");
            BOOST_TEST(r.header("etag") == "\"" + aqt::sha256_hex(content) + "\"");
        }
    }

    // Points new uploads at another store and restarts the gateway on the changed config.
    void switch_store(const std::string& store) {
        json::value cfg = json::parse([&] {
            std::ifstream in(gw->config_path());
            return std::string(std::istreambuf_iterator<char>(in), {});
        }());
        cfg.at("plugins").at("files").as_object()["store"] = store;
        std::ofstream(gw->config_path(), std::ios::trunc) << json::serialize(cfg);
        gw->restart();
        alice = std::make_unique<aqt::http::client>(gw->port());
        alice->default_headers["Authorization"] = gw->bearer("alice");
    }

    long long count(const std::string& sql) const { return std::stoll(aqt::sql_value(database, sql)); }
    std::size_t files_in_folder() const {
        std::size_t n = 0;
        for (auto& e : std::filesystem::recursive_directory_iterator(folder))
            if (e.is_regular_file()) ++n;
        return n;
    }
    std::vector<std::string> move_args() const {
        return {"move", "--config", gw->config_path().string(), "--to", "filesystem"};
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(files_move_from_the_database_store_to_the_filesystem_store_while_served) {
    moving_gateway g;
    // Sizes around the database store's 1 MiB chunks, and a batch file.
    for (std::size_t size : {1u, 1000u, (1u << 20) - 1, 1u << 20, (1u << 20) + 1, (5u << 19) + 7, 3u << 20, 70000u})
        g.upload("f" + std::to_string(size) + ".bin", aqt::pattern_bytes(size, static_cast<std::uint32_t>(size)));
    std::string jsonl;
    for (int i = 0; i < 500; ++i)
        jsonl += R"({"custom_id": "r)" + std::to_string(i) +
                 R"(", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}})" "\n";
    g.upload("input.jsonl", jsonl, "batch");
    BOOST_TEST_REQUIRE(g.count("select count(*) from files where store = 'database'") == 9);

    // New files go to the filesystem store from now on; the old ones stay readable where they are.
    g.switch_store("filesystem");
    g.read_all();
    g.upload("after-switch-1.bin", aqt::pattern_bytes(2 << 20, 77));
    g.upload("after-switch-2.bin", aqt::pattern_bytes(10, 78));
    BOOST_TEST(g.count("select count(*) from files where store = 'filesystem'") == 2);
    BOOST_TEST(g.files_in_folder() == 2u);

    // A download of a database-store file that the client stops reading after its first bytes,
    // to finish once the file has moved (below): it follows the content to its new store.
    // 24 MiB: far more than the socket buffers and the host's queue hold (a few MiB at most),
    // so most of it is still to be read from the database store when the content moves.
    const std::size_t total = 24u << 20;
    g.switch_store("database");
    const std::string followed = g.upload("followed.bin", aqt::pattern_bytes(total, 99));
    g.switch_store("filesystem");
    aqt::raw::connection reader(g.gw->port(), aqt::raw::connection_options{16 * 1024, {}});
    BOOST_TEST_REQUIRE(reader.send("GET /v1/files/" + followed + "/content HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                                   g.gw->bearer("alice") + "\r\n\r\n"));
    auto head = reader.read_until("\r\n\r\n");
    BOOST_TEST_REQUIRE(head.data.rfind("HTTP/1.1 200 OK\r\n", 0) == 0u, head.data);
    // The client stops reading now. Body bytes that came with the head stay in reader.pending(),
    // which the first read_for() below returns.
    std::string body;

    // The move, killed -9 at its fourth file: copied and verified, its row not switched yet.
    {
        aqt::child_process move(aqt::files_tool_path(), g.move_args(), {{"AQ_FILES_TEST_PAUSE", "move_copied:60000@4"}});
        BOOST_TEST_REQUIRE(move.wait_for_output("files: test pause at move_copied", 60s), move.output());
        move.kill9();
    }
    BOOST_TEST(g.count("select count(*) from files where state = 'ready' and store = 'filesystem'") == 2 + 3);
    BOOST_TEST(g.count("select count(*) from files where state = 'ready' and store = 'database'") == 10 - 3);
    BOOST_TEST(g.count("select count(*) from files where state = 'writing' and id like 'move-%'") == 1);
    BOOST_TEST(g.files_in_folder() == 2u + 3u + 1u);  // and the abandoned copy
    g.read_all();
    // The abandoned copy's lease runs out and the purge removes it.
    // (The purge removes the content, then the row: wait for both.)
    BOOST_TEST(aqt::wait_until(
        [&] { return g.files_in_folder() == 5u && g.count("select count(*) from files where state <> 'ready'") == 0; },
        30s));
    BOOST_TEST(g.files_in_folder() == 5u);
    BOOST_TEST(g.count("select count(*) from files where state <> 'ready'") == 0);

    // Resumed while clients keep downloading every file.
    std::atomic<bool> stop{false};
    std::atomic<int> downloads{0}, wrong{0};
    std::thread client([&] {
        aqt::http::client c(g.gw->port());
        c.default_headers["Authorization"] = g.gw->bearer("alice");
        while (!stop)
            for (const auto& [id, content] : g.contents) {
                response r = c.get("/v1/files/" + id + "/content");
                ++downloads;
                if (r.status != 200 || r.body != content) ++wrong;
            }
    });
    aqt::child_process resume(aqt::files_tool_path(), g.move_args());
    aqt::exit_status done = resume.wait(120s);
    stop = true;
    client.join();
    BOOST_TEST(done.success(), done.describe() << "\n" << resume.output());
    BOOST_TEST(resume.output().find("moved 7 of 7 files") != std::string::npos, resume.output());
    BOOST_TEST(downloads > 0);
    BOOST_TEST(wrong == 0);

    // Everything is in the filesystem store, nothing is left in the database store.
    BOOST_TEST(g.count("select count(*) from files where store = 'filesystem' and state = 'ready'") == 12);
    BOOST_TEST(g.count("select count(*) from files") == 12);
    BOOST_TEST(g.count("select count(*) from file_chunks") == 0);
    BOOST_TEST(g.files_in_folder() == 12u);
    g.read_all();

    // The paused download finishes from the filesystem store, byte-exact.
    for (int i = 0; i < 100 && body.size() < total; ++i) body += reader.read_for(100ms).data;
    BOOST_TEST(body.size() == total);
    BOOST_TEST((body == g.contents[followed]));

    // Moving again finds nothing to move.
    aqt::child_process again(aqt::files_tool_path(), g.move_args());
    BOOST_TEST(again.wait(60s).success(), again.output());
    BOOST_TEST(again.output().find("moved 0 of 0 files") != std::string::npos, again.output());
}

BOOST_AUTO_TEST_CASE(the_move_refuses_a_store_the_config_does_not_set_up) {
    moving_gateway g;
    aqt::child_process move(aqt::files_tool_path(),
                            {"move", "--config", g.gw->config_path().string(), "--to", "s3"});
    aqt::exit_status st = move.wait(30s);
    BOOST_TEST(st.exited);
    BOOST_TEST(st.code == 2);
    BOOST_TEST(move.output().find("the \"s3\" store is not set up in") != std::string::npos, move.output());
}

BOOST_AUTO_TEST_CASE(a_move_whose_lease_ran_out_switches_nothing_and_a_second_run_moves_the_file) {
    moving_gateway g;
    const std::string id = g.upload("held.bin", aqt::pattern_bytes(3 << 20, 11));
    g.switch_store("filesystem");
    {
        // Held between the verified copy and the switch for longer than orphan_grace_seconds
        // (3 s): the intent's lease is up, the purge may be removing the copy, so the file must
        // not be pointed at it.
        aqt::child_process move(aqt::files_tool_path(), g.move_args(), {{"AQ_FILES_TEST_PAUSE", "move_copied:5000"}});
        aqt::exit_status st = move.wait(60s);
        BOOST_TEST(st.exited);
        BOOST_TEST(st.code == 1, move.output());
        BOOST_TEST(move.output().find(id + " (database) was not moved: the move's lease ran out before its switch") !=
                       std::string::npos,
                   move.output());
        BOOST_TEST(move.output().find("moved 0 of 1 files") != std::string::npos, move.output());
    }
    BOOST_TEST(g.count("select count(*) from files where id = '" + id + "' and store = 'database' and state = 'ready'") ==
               1);
    BOOST_TEST(aqt::wait_until(
        [&] { return g.files_in_folder() == 0u && g.count("select count(*) from files") == 1; }, 30s));
    g.read_all();

    aqt::child_process again(aqt::files_tool_path(), g.move_args());
    BOOST_TEST(again.wait(60s).success(), again.output());
    BOOST_TEST(again.output().find("moved 1 of 1 files") != std::string::npos, again.output());
    BOOST_TEST(g.count("select count(*) from files where store = 'filesystem' and state = 'ready'") == 1);
    BOOST_TEST(g.count("select count(*) from file_chunks") == 0);
    BOOST_TEST(g.files_in_folder() == 1u);
    g.read_all();
}
