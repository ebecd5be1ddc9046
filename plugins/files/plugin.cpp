// The files plugin: the OpenAI-compatible Files API over a SQL store (API.md, Files).
//
// init: validate the config, open the database pool, migrate the schema, register the routes,
// the purge job and the "files" v1 service. All state lives in one object freed at shutdown
// (the host stops routes and jobs, and the consumers of the service, before calling it).
#include "config.hpp"
#include "expiry.hpp"
#include "routes.hpp"
#include "service.hpp"
#include "store.hpp"
#include "test_pause.hpp"

#include "sql/pool.hpp"

#include <aqueduct/plugin.hpp>

namespace {

struct files_plugin {
    aq::files::config cfg;
    std::unique_ptr<aq::sql::pool> pool;
    std::unique_ptr<aq::files::store> files;
    std::unique_ptr<aq::files::service> service;
};

aq_status init(aq::host& host, void** ctx) {
    auto p = std::make_unique<files_plugin>();
    p->cfg = aq::files::config::parse(host.config());
    aq::files::configure_test_pauses([host](const std::string& line) { host.info(line); });
    aq::sql::pool_options po;
    po.size = p->cfg.pool_size;
    po.streaming = *p->cfg.upload_sessions;
    po.wait = std::chrono::milliseconds(p->cfg.session_wait_ms);
    po.on_change = [host](bool reachable, const std::string& detail) {
        if (reachable) host.info("files: the database is reachable again");
        else host.warn("files: the database is unreachable, requests get 503 until it is back: " + detail);
    };
    p->pool = std::make_unique<aq::sql::pool>(p->cfg.database, std::move(po));
    // Uploads to SQLite and service writes are staged beside the database (same disk, never a
    // RAM-backed /tmp); with PostgreSQL only service writes are staged, in TMPDIR.
    std::filesystem::path staging = p->pool->file().empty()
                                        ? std::filesystem::temp_directory_path()
                                        : std::filesystem::path(p->pool->file()).parent_path();
    p->files = std::make_unique<aq::files::store>(*p->pool, staging, p->cfg.legacy_team_owners);
    if (const auto& m = p->files->migrated_owners(); m.users || m.teams)
        host.info("files: owners migrated to owner keys: " + std::to_string(m.users) + " user name(s), " +
                  std::to_string(m.teams) + " team name(s) (legacy_team_owners)");
    p->service = std::make_unique<aq::files::service>(host, p->cfg, *p->files);
    aq::files::register_routes(host, p->cfg, *p->files);
    aq::files::register_expiry(host, p->cfg, *p->files);
    host.provide(AQ_FILES_SERVICE_NAME, AQ_FILES_SERVICE_VERSION, p->service->table());
    host.info("files: " + std::string(p->pool->kind() == aq::sql::backend::sqlite ? "SQLite" : "PostgreSQL") +
              " store ready");
    *ctx = p.release();
    return AQ_OK;
}

void shutdown(void* ctx) { delete static_cast<files_plugin*>(ctx); }

}  // namespace

AQ_DEFINE_PLUGIN("files", "1.0.0", init, shutdown)
