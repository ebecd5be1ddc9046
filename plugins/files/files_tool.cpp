// aqueduct-files: maintenance of the Files API's content, beside a running gateway.
//
//   aqueduct-files move --config FILE --to STORE
//
// Reads the gateway's own config file (the same ${ENV} expansion and relative paths as
// aqueductd), opens the files plugin's database and content stores, and moves every file that
// is not in STORE there (mover.hpp), printing a progress line once a second and a summary at
// the end. The gateway keeps serving throughout. SIGINT or SIGTERM stops after the file being
// moved; running the command again resumes with what is left.
//
// STORE must be set up in the config (plugins.files.filesystem / s3, or "database"), and the
// gateway must run with a config that sets it up too, or it cannot read the moved files. New
// uploads go to plugins.files.store: point it at STORE first, or they keep landing elsewhere.
//
// Exit status: 0 when every file is in STORE, 1 when some could not be moved (each is named),
// 2 for a usage or config error.
#include "config.hpp"
#include "content_stores.hpp"
#include "mover.hpp"
#include "store.hpp"
#include "test_pause.hpp"

// The host's config reader (aqueduct_host_core), so that the file reads exactly as aqueductd
// reads it; by path, since the plugin has a config.hpp of its own.
#include "../../host/config.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

namespace {

constexpr const char* usage = "usage: aqueduct-files move --config FILE --to filesystem|database|s3\n";

std::atomic<bool> stop_requested{false};

extern "C" void on_signal(int) { stop_requested = true; }

int move(const std::string& config_path, const std::string& to) {
    aqd::config host;
    try {
        host = aqd::load_config(config_path);
    } catch (const std::exception& e) {
        std::cerr << "aqueduct-files: invalid config: " << e.what() << "\n";
        return 2;
    }
    const aqd::plugin_config* section = nullptr;
    for (const auto& p : host.plugins)
        if (p.name == "files") section = &p;
    if (!section) {
        std::cerr << "aqueduct-files: " << config_path << " has no plugins.files section\n";
        return 2;
    }
    aq::files::config cfg;
    try {
        cfg = aq::files::config::parse(boost::json::parse(section->json).as_object());
    } catch (const std::exception& e) {
        std::cerr << "aqueduct-files: invalid config: " << e.what() << "\n";
        return 2;
    }
    if (!cfg.readable_stores().contains(to)) {
        std::cerr << "aqueduct-files: the \"" << to << "\" store is not set up in " << config_path
                  << " (plugins.files." << to << ")\n";
        return 2;
    }
    if (to != cfg.store)
        std::cout << "note: new uploads go to the " << cfg.store << " store (plugins.files.store), not to " << to
                  << "; files uploaded meanwhile are left for the next run\n";

    aq::sql::pool_options po;
    po.size = 2;
    po.streaming = 1;
    po.wait = std::chrono::milliseconds(cfg.session_wait_ms);
    try {
        aq::sql::pool pool(cfg.database, po);
        aq::files::content_stores stores(cfg, pool,
                                         [](const std::string& line, aq::s3::error_kind) { std::cerr << line << "\n"; });
        aq::files::store::options so;
        so.orphan_grace_seconds = cfg.orphan_grace_seconds;
        so.legacy_teams = cfg.legacy_team_owners;
        so.end_stale_writes = false;  // the gateway's writes in flight are not ours to end
        aq::files::store files(pool, stores, so);

        auto last_line = std::chrono::steady_clock::now() - std::chrono::seconds(1);
        aq::files::mover m(
            files, stores.get(to),
            [&](const aq::files::move_progress& p) {
                auto now = std::chrono::steady_clock::now();
                if (now - last_line < std::chrono::seconds(1)) return;
                last_line = now;
                std::cout << aq::files::describe(p) << std::endl;
            },
            [](const std::string& line) { std::cerr << "aqueduct-files: " << line << "\n"; });
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        aq::files::move_progress done = m.run(stop_requested);
        std::cout << aq::files::describe(done) << (stop_requested ? " (stopped; run again to resume)" : "")
                  << std::endl;
        if (done.files_failed) return 1;
        return stop_requested ? 1 : 0;
    } catch (const std::exception& e) {
        std::cerr << "aqueduct-files: " << e.what() << "\n";
        return 2;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) != "move") {
        std::cerr << usage;
        return 2;
    }
    std::string config_path, to;
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--config" && i + 1 < argc) config_path = argv[++i];
        else if (arg == "--to" && i + 1 < argc) to = argv[++i];
        else {
            std::cerr << "aqueduct-files: unknown argument '" << arg << "'\n" << usage;
            return 2;
        }
    }
    if (config_path.empty() || to.empty()) {
        std::cerr << usage;
        return 2;
    }
    aq::files::configure_test_pauses([](const std::string& line) { std::cout << line << std::endl; });
    return move(config_path, to);
}
