// The batches plugin's entry point: reads its config, opens its database, migrates its schema,
// finds the files service, registers the routes and the runner job.
#include "config.hpp"
#include "routes.hpp"
#include "runner.hpp"
#include "store.hpp"

#include "sql/pool.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

#include <memory>
#include <stdexcept>

namespace {

struct plugin_state {
    batches::config cfg;
    std::unique_ptr<aq::sql::pool> pool;
    std::unique_ptr<batches::store> db;
    std::unique_ptr<batches::runner> run;
};

aq_status init(aq::host& host, void** ctx) {
    auto state = std::make_unique<plugin_state>();
    state->cfg = batches::parse_config(host.config());
    const auto* files = host.service<aq_files_v1>(AQ_FILES_SERVICE_NAME, AQ_FILES_SERVICE_VERSION);
    if (!files || !AQ_HAS_FIELD(files, aq_files_v1, close_writer))
        throw std::runtime_error("plugins.batches needs the files service: enable the files plugin and add "
                                 "\"requires\": [\"files\"]");
    // Route handlers borrow a session each; the runner up to two.
    state->pool = std::make_unique<aq::sql::pool>(state->cfg.database, 8);
    state->db = std::make_unique<batches::store>(*state->pool);
    state->db->migrate();
    batches::register_routes(host, state->cfg, *state->db, *files);
    state->run = std::make_unique<batches::runner>(host, state->cfg, *state->db, *files);
    batches::runner* r = state->run.get();
    host.job("runner", state->cfg.poll_interval_ms, 0, [r] { r->run(); });
    host.info("batches: runner " + r->id() + ", " + std::to_string(state->cfg.upstreams.size()) + " upstream(s)");
    *ctx = state.release();
    return AQ_OK;
}

void shutdown(void* ctx) { delete static_cast<plugin_state*>(ctx); }

}  // namespace

AQ_DEFINE_PLUGIN("batches", "0.1.0", init, shutdown)
