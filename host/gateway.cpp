#include "gateway.hpp"

#include "access_log.hpp"
#include "auth.hpp"
#include "body_spool.hpp"
#include "host_api.hpp"
#include "host_metrics.hpp"
#include "http_server.hpp"
#include "loader.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "plugin_order.hpp"
#include "process_metrics.hpp"
#include "readiness.hpp"
#include "router.hpp"
#include "scheduler.hpp"
#include "service_registry.hpp"
#include "tls.hpp"
#include "worker_pool.hpp"

#include <algorithm>
#include <csignal>
#include <list>
#include <memory>
#include <optional>

namespace aqd {

namespace {

struct running_plugin {
    loaded_plugin lib;
    aq_host host;
    void* ctx = nullptr;
};

void shutdown_plugins(std::list<running_plugin>& plugins) {
    // Reverse init order: a plugin goes before the plugins it depends on.
    for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
        if (it->lib.descriptor->shutdown) {
            log::info("host", "shutting down plugin " + it->lib.name);
            it->lib.descriptor->shutdown(it->ctx);
        }
    }
    plugins.clear();
}

// What a reload may change, and the config in force: the start config with the reloadable keys
// of every accepted reload.
struct reloadable {
    const std::filesystem::path& file;
    config in_force;
    authenticator& auth;
    access_log& access;
    host_metrics& metrics;
    tls_contexts* tls;  // null without a TLS listener
};

// Keys a reload puts in force; any other change waits for a restart. TLS counts when only its
// certificate and key changed (the files are read again on every reload anyway).
bool reloadable_key(const std::string& key, const config& before, const config& after) {
    if (key == "tokens" || key == "log_level" || key == "access_log") return true;
    if (key != "tls") return false;
    const tls_config &a = before.tls, &b = after.tls;
    return a.enabled && b.enabled && a.listen_address == b.listen_address && a.listen_port == b.listen_port &&
           a.min_version == b.min_version;
}

void reload(reloadable& r) {
    log::info("host", "received SIGHUP: reloading " + r.file.string());
    r.access.reopen();  // logrotate's postrotate may send SIGHUP as well
    config next;
    std::shared_ptr<const tls_context> certificate;
    try {
        next = load_config(r.file);
        // Everything that can fail is done before anything changes: a refused reload leaves the
        // running config whole. The certificate and key are read again even when their names are
        // the same: renewing a certificate means replacing the files.
        if (r.tls && next.tls.enabled) certificate = std::make_shared<const tls_context>(next.tls);
        r.access.retarget(next.access_log);
    } catch (const std::exception& e) {
        // The same words as a refusal at start.
        const bool invalid = dynamic_cast<const config_error*>(&e) != nullptr;
        log::error("host", (invalid ? std::string("invalid config: ") : std::string()) + e.what());
        log::error("host", "reload refused: the running config stays in force");
        r.metrics.reloads.counter({"refused"}).add(1);
        return;
    }
    for (const std::string& key : changed_keys(r.in_force, next))
        if (!reloadable_key(key, r.in_force, next)) log::warn("host", key + " changed: needs a restart (the running value stays in force)");
    r.auth.replace(next.tokens);  // the config's digests are valid: this cannot throw
    r.in_force.tokens = next.tokens;
    r.in_force.log_level = next.log_level;
    r.in_force.access_log = next.access_log;
    if (certificate) {
        r.tls->replace(certificate);  // new connections; established ones keep theirs
        r.in_force.tls.certificate = next.tls.certificate;
        r.in_force.tls.private_key = next.tls.private_key;
        log::info("host", "TLS certificate for new connections: " + certificate->description());
    }
    r.metrics.reloads.counter({"ok"}).add(1);
    // Said before the new level applies, so a quieter level does not hide that it came.
    log::info("host", "config reloaded: " + std::to_string(next.tokens.size()) + " token(s), log_level " +
                          next.log_level + ", access_log " + next.access_log);
    aq_log_level level = AQ_LOG_INFO;
    log::parse_level(next.log_level, level);
    log::set_level(level);
}

}  // namespace

sigset_t gateway_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    return signals;
}

int run_gateway(const config& cfg, const std::filesystem::path& config_file) {
    std::atomic<bool> stopping{false};
    std::atomic<bool> ready{false};
    metrics::registry registry;
    host_metrics metrics(registry);
    add_process_metrics(registry);
    authenticator auth(cfg.tokens);
    std::optional<access_log> access;
    try {
        access.emplace(cfg.access_log);
    } catch (const std::exception& e) {
        log::error("host", e.what());
        return 1;
    }
    std::optional<tls_contexts> tls;
    if (cfg.tls.enabled) {
        try {
            tls.emplace(std::make_shared<const tls_context>(cfg.tls));
        } catch (const std::exception& e) {
            log::error("host", e.what());
            return 1;
        }
    }
    router routes;
    service_registry services;
    readiness checks(std::chrono::milliseconds(cfg.readiness_interval_ms));
    worker_pool pool(cfg.workers, cfg.max_queued_requests);
    // Jobs run on threads of their own, created once the plugins have registered them: one per
    // job, since a job never runs twice at once. A pool full of request handlers never delays a
    // job (the batch runner, the expiry purge).
    std::unique_ptr<worker_pool> job_threads;
    scheduler jobs([&job_threads](std::function<void()> run) { job_threads->post(std::move(run)); });
    host_context context{routes, jobs, services, stopping, metrics, checks};

    // std::list: aq_host addresses are handed to plugins and must never move.
    std::list<running_plugin> plugins;
    try {
        auto order = plugin_order(cfg.plugins);
        // Without a plugin_dir the loader would search wherever the process happened to start.
        if (!order.empty() && cfg.plugin_dir.empty())
            throw load_error("plugin_dir: required when a plugin is enabled (plugins." + order.front() + ")");
        for (const std::string& name : order) {
            const plugin_config* pc = nullptr;
            for (auto& p : cfg.plugins)
                if (p.name == name) pc = &p;
            loaded_plugin lib = load_plugin(cfg.plugin_dir, name);  // throws before anything is listed
            auto& rp = plugins.emplace_back();
            rp.lib = std::move(lib);
            rp.host.context = &context;
            rp.host.plugin = name;
            rp.host.config_json = pc->json;
            bind_host_api(rp.host);
            const aq_plugin* d = rp.lib.descriptor;
            log::info("host", "initialising plugin " + name + " " + std::string(d->version.data, d->version.len) + " from " +
                                  rp.lib.path.string());
            aq_status st = d->init(&rp.host.api, &rp.ctx);
            rp.host.registering = false;
            if (st != AQ_OK) {
                std::string why = rp.host.error.empty() ? "init returned status " + std::to_string(st) : rp.host.error;
                plugins.pop_back();  // a failed init gets no shutdown call
                throw load_error("plugin " + name + ": init failed: " + why);
            }
        }
    } catch (const std::exception& e) {
        log::error("host", e.what());
        stopping = true;
        shutdown_plugins(plugins);
        return 1;
    }

    try {
        body_spool::check_dir(cfg.spool_dir);
    } catch (const std::exception& e) {
        log::error("host", e.what());
        stopping = true;
        shutdown_plugins(plugins);
        return 1;
    }

    // The plugins' readiness is known before the first client can ask, then kept fresh by a job.
    checks.check();
    if (checks.size())
        jobs.add("host.readiness", std::chrono::milliseconds(cfg.readiness_interval_ms), std::chrono::milliseconds(0),
                 [&checks] { checks.check(); });

    std::optional<http_server> server;
    server.emplace(server_parts{cfg, routes, auth, pool, metrics, *access,
                                [&] { return ready.load() && !stopping.load(); },
                                [&checks] { return checks.not_ready(); }, tls ? &*tls : nullptr});
    http_server::addresses bound;
    try {
        bound = server->start();
    } catch (const std::exception& e) {
        log::error("host", "cannot listen on " + std::string(e.what()));
        stopping = true;
        shutdown_plugins(plugins);
        return 1;
    }
    job_threads = std::make_unique<worker_pool>(static_cast<unsigned>(std::max<std::size_t>(1, jobs.size())));
    jobs.start();
    ready = true;
    log::info("host", "listening on http://" + bound.plain);
    if (tls) {
        log::info("host", "TLS certificate: " + tls->current()->description());
        log::info("host", "listening on https://" + bound.tls);
    }

    reloadable state{config_file, cfg, auth, *access, metrics, tls ? &*tls : nullptr};
    const sigset_t signals = gateway_signals();
    int sig = 0;
    for (;;) {
        sigwait(&signals, &sig);
        if (sig == SIGHUP) {
            reload(state);
        } else if (sig == SIGUSR1) {
            access->reopen();
        } else {
            break;
        }
    }

    // Graceful shutdown: stop taking requests, let the ones in flight finish (up to the
    // deadline), stop jobs, wait for handlers, then shut plugins down in reverse order.
    log::info("host", std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
    ready = false;
    stopping = true;
    server->stop_accepting();
    std::size_t left = server->drain(std::chrono::milliseconds(cfg.shutdown_timeout_ms));
    if (left) log::warn("host", std::to_string(left) + " request(s) still in flight at the deadline; disconnecting them");
    server->stop();
    jobs.stop();
    job_threads->stop();
    pool.stop();
    // After the workers: the server lets go of the last requests (and their body sources)
    // while every plugin is still there to release them.
    server.reset();
    shutdown_plugins(plugins);
    log::info("host", "stopped");
    return 0;
}

}  // namespace aqd
