// The batches plugin's entry point: reads its config, opens its database, migrates its schema,
// finds the files service, and starts its parts: the routes, the heartbeat (its own thread),
// and two jobs, the runner (claim, send, record) and the housekeeper (validate, finalize,
// retention).
#include "batch_table.hpp"
#include "config.hpp"
#include "halted_batches.hpp"
#include "heartbeat.hpp"
#include "housekeeper.hpp"
#include "line_queue.hpp"
#include "metrics.hpp"
#include "rate_table.hpp"
#include "routes.hpp"
#include "runner.hpp"
#include "schema.hpp"
#include "webhook_outbox.hpp"
#include "webhook_sender.hpp"

#include "sql/pool.hpp"
#include "sql/pool_metrics.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

#include <chrono>
#include <memory>
#include <stdexcept>

namespace {

// Destroyed in reverse: jobs and routes are stopped by the host before shutdown, then the
// runner (its upstream client), the housekeeper, the heartbeat and last the pool.
struct plugin_state {
    batches::config cfg;
    std::unique_ptr<batches::batch_metrics> metrics;
    std::unique_ptr<aq::sql::pool> pool;
    std::unique_ptr<batches::batch_table> batches;
    std::unique_ptr<batches::line_queue> lines;
    std::unique_ptr<batches::rate_table> rates;
    batches::halted_batches halted;
    std::unique_ptr<batches::heartbeat> beat;
    std::unique_ptr<batches::housekeeper> keeper;
    std::unique_ptr<batches::runner> run;
    std::unique_ptr<batches::webhook_outbox> outbox;
    std::unique_ptr<batches::webhook_sender> sender;
};

aq_status init(aq::host& host, void** ctx) {
    auto state = std::make_unique<plugin_state>();
    state->cfg = batches::parse_config(host.config());
    const auto* files = host.service<aq_files_v1>(AQ_FILES_SERVICE_NAME, AQ_FILES_SERVICE_VERSION);
    if (!files || !AQ_HAS_FIELD(files, aq_files_v1, close_writer))
        throw std::runtime_error("plugins.batches needs the files service: enable the files plugin and add "
                                 "\"requires\": [\"files\"]");
    // Route handlers borrow a session each, the runner and the housekeeper one each at a time;
    // the heartbeat has a session of its own. A lease waits at most session_wait_ms; a session
    // the database dropped (a restart) is reopened with backoff (sql/pool.hpp).
    aq::sql::pool_options po;
    po.size = state->cfg.pool_size;
    po.wait = std::chrono::milliseconds(state->cfg.session_wait_ms);
    po.on_change = [host](bool reachable, const std::string& detail) {
        if (reachable) host.info("batches: the database is reachable again");
        else host.warn("batches: the database is unreachable: " + detail);
    };
    aq::sql::count_pool_waits(host, "aqueduct_batches", po);
    state->pool = std::make_unique<aq::sql::pool>(state->cfg.database, std::move(po));
    // /readyz: a round trip to the database (never waiting for a session the runner holds).
    host.readiness([pool = state->pool.get()] { return pool->ready_now(); });
    state->metrics = std::make_unique<batches::batch_metrics>(host, state->cfg);
    if (auto m = batches::migrate_schema(*state->pool, state->cfg.legacy_team_owners); m.users || m.teams)
        host.info("batches: owners migrated to owner keys: " + std::to_string(m.users) + " user name(s), " +
                  std::to_string(m.teams) + " team name(s) (legacy_team_owners)");
    state->batches = std::make_unique<batches::batch_table>(*state->pool, state->cfg.webhooks);
    state->lines = std::make_unique<batches::line_queue>(*state->pool);
    const std::string me = aq::random_id("host_", 16);
    state->beat = std::make_unique<batches::heartbeat>(host, state->cfg, me, state->halted);
    state->keeper = std::make_unique<batches::housekeeper>(host, state->cfg, *state->batches, *state->lines, *files,
                                                           *state->beat);
    state->rates = std::make_unique<batches::rate_table>(*state->pool);
    state->run = std::make_unique<batches::runner>(host, state->cfg, *state->batches, *state->lines, state->halted, me,
                                                   state->metrics.get(), state->rates.get());
    batches::register_routes(host, state->cfg, *state->batches, state->halted, *files);
    state->outbox = std::make_unique<batches::webhook_outbox>(*state->pool);
    state->sender = std::make_unique<batches::webhook_sender>(host, state->cfg, *state->outbox, me);
    batches::runner* r = state->run.get();
    batches::housekeeper* k = state->keeper.get();
    host.job("runner", state->cfg.poll_interval_ms, 0, [r] { r->run(); });
    host.job("housekeeping", state->cfg.poll_interval_ms, 0, [k] { k->run(); });
    // Without endpoints the sender only drops what an earlier config left in the outbox.
    host.job("webhooks", state->cfg.webhooks.empty() ? 60'000 : state->cfg.poll_interval_ms, 0,
             [s = state->sender.get()] { s->run(); });
    // The batches-by-status gauge; a database that is away leaves the last counts.
    host.job("batch-counts", 1000, 100, [m = state->metrics.get(), pool = state->pool.get()] {
        try {
            m->refresh_status_counts(*pool);
        } catch (const std::exception&) {
        }
    });
    host.info("batches: host " + me + ", " + std::to_string(state->cfg.upstreams.size()) + " upstream(s), " +
              std::to_string(state->cfg.webhooks.size()) + " webhook endpoint(s)");
    *ctx = state.release();
    return AQ_OK;
}

void shutdown(void* ctx) { delete static_cast<plugin_state*>(ctx); }

}  // namespace

AQ_DEFINE_PLUGIN("batches", "0.1.0", init, shutdown)
