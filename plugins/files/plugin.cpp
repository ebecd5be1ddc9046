// The files plugin: the OpenAI-compatible Files API, metadata in SQL and content in a content
// store (API.md, Files; content_store.hpp).
//
// init: validate the config, open the database pool and the content stores, migrate the schema,
// register the routes, the purge job and the "files" v1 service. All state lives in one object freed at shutdown
// (the host stops routes and jobs, and the consumers of the service, before calling it).
#include "config.hpp"
#include "content_stores.hpp"
#include "s3_store.hpp"
#include "expiry.hpp"
#include "metrics.hpp"
#include "routes.hpp"
#include "service.hpp"
#include "store.hpp"
#include "test_pause.hpp"
#include "uploads.hpp"

#include "sql/pool.hpp"
#include "sql/pool_metrics.hpp"

#include <aqueduct/plugin.hpp>

namespace {

struct files_plugin {
    aq::files::config cfg;
    std::unique_ptr<aq::files::files_metrics> metrics;
    std::unique_ptr<aq::sql::pool> pool;
    std::unique_ptr<aq::files::content_stores> stores;
    std::unique_ptr<aq::files::store> files;
    std::unique_ptr<aq::files::uploads> uploads;
    std::unique_ptr<aq::files::service> service;
};

aq_status init(aq::host& host, void** ctx) {
    auto p = std::make_unique<files_plugin>();
    p->cfg = aq::files::config::parse(host.config());
    aq::files::configure_test_pauses([host](const std::string& line) { host.info(line); });
    aq::sql::pool_options po;
    po.size = p->cfg.pool_size;
    po.streaming = *p->cfg.upload_sessions;  // chunk writes of the database store
    po.wait = std::chrono::milliseconds(p->cfg.session_wait_ms);
    po.on_change = [host](bool reachable, const std::string& detail) {
        if (reachable) host.info("files: the database is reachable again");
        else host.warn("files: the database is unreachable, requests get 503 until it is back: " + detail);
    };
    aq::sql::count_pool_waits(host, "aqueduct_files", po);
    p->pool = std::make_unique<aq::sql::pool>(p->cfg.database, std::move(po));
    // /readyz: a round trip to the database (never waiting for a session a request holds).
    host.readiness([pool = p->pool.get()] { return pool->ready_now(); });
    p->metrics = std::make_unique<aq::files::files_metrics>(host, p->cfg.s3.has_value());
    p->stores = std::make_unique<aq::files::content_stores>(
        p->cfg, *p->pool, [host, metrics = p->metrics.get()](const std::string& line, aq::s3::error_kind kind) {
            metrics->s3_retried(kind);
            host.warn(line);
        });
    aq::files::store::options so;
    so.orphan_grace_seconds = p->cfg.orphan_grace_seconds;
    so.legacy_teams = p->cfg.legacy_team_owners;
    // Scratch files of an upload (the batch validator's log of ids) go beside a SQLite database
    // (its disk, never a RAM-backed /tmp); with PostgreSQL to TMPDIR.
    so.scratch_folder = p->pool->file().empty() ? std::filesystem::temp_directory_path()
                                                : std::filesystem::path(p->pool->file()).parent_path();
    p->files = std::make_unique<aq::files::store>(*p->pool, *p->stores, std::move(so));
    if (const auto& m = p->files->migrated_owners(); m.users || m.teams)
        host.info("files: owners migrated to owner keys: " + std::to_string(m.users) + " user name(s), " +
                  std::to_string(m.teams) + " team name(s) (legacy_team_owners)");
    if (std::size_t n = p->files->abandoned_at_start())
        host.info("files: " + std::to_string(n) + " write(s) left unfinished by an earlier run; the purge removes them");
    p->service = std::make_unique<aq::files::service>(host, p->cfg, *p->files);
    p->uploads = std::make_unique<aq::files::uploads>(*p->files, p->cfg);
    aq::files::register_routes(host, p->cfg, *p->files, *p->uploads, *p->metrics);
    aq::files::register_expiry(host, p->cfg, *p->files, *p->uploads, *p->metrics);
    host.provide(AQ_FILES_SERVICE_NAME, AQ_FILES_SERVICE_VERSION, p->service->table());
    std::string where = p->cfg.store;
    if (p->cfg.store == "filesystem") where += " (" + p->cfg.filesystem.path + ")";
    if (p->cfg.store == "s3") where += " (bucket " + p->cfg.s3->bucket + ")";
    if (auto* s3 = dynamic_cast<aq::files::s3_store*>(p->stores->find("s3")))
        host.info(s3->streams_large_contents()
                      ? "files: s3: the server takes a streamed PUT; large contents go up as one streamed PUT "
                        "(up to 5 GiB; multipart beyond)"
                      : "files: s3: large contents go up as multipart uploads");
    host.info("files: ready; metadata in " +
              std::string(p->pool->kind() == aq::sql::backend::sqlite ? "SQLite" : "PostgreSQL") +
              ", new files in the " + where + " store");
    *ctx = p.release();
    return AQ_OK;
}

void shutdown(void* ctx) { delete static_cast<files_plugin*>(ctx); }

}  // namespace

AQ_DEFINE_PLUGIN("files", "1.0.0", init, shutdown)
