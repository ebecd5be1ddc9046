#include "gateway.hpp"

#include "auth.hpp"
#include "body_spool.hpp"
#include "host_api.hpp"
#include "http_server.hpp"
#include "loader.hpp"
#include "log.hpp"
#include "plugin_order.hpp"
#include "router.hpp"
#include "scheduler.hpp"
#include "service_registry.hpp"
#include "worker_pool.hpp"

#include <algorithm>
#include <csignal>
#include <optional>
#include <list>
#include <memory>

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

}  // namespace

int run_gateway(const config& cfg) {
    std::atomic<bool> stopping{false};
    std::atomic<bool> ready{false};
    authenticator auth(cfg.tokens);
    router routes;
    service_registry services;
    worker_pool pool(cfg.workers, cfg.max_queued_requests);
    // Jobs run on threads of their own, created once the plugins have registered them: one per
    // job, since a job never runs twice at once. A pool full of request handlers never delays a
    // job (the batch runner, the expiry purge).
    std::unique_ptr<worker_pool> job_threads;
    scheduler jobs([&job_threads](std::function<void()> run) { job_threads->post(std::move(run)); });
    host_context context{routes, jobs, services, stopping};

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

    std::optional<http_server> server;
    server.emplace(cfg, routes, auth, pool, [&] { return ready.load() && !stopping.load(); });
    std::string bound;
    try {
        bound = server->start();
    } catch (const std::exception& e) {
        log::error("host", "cannot listen on " + cfg.listen_address + ":" + std::to_string(cfg.listen_port) + ": " + e.what());
        stopping = true;
        shutdown_plugins(plugins);
        return 1;
    }
    job_threads = std::make_unique<worker_pool>(static_cast<unsigned>(std::max<std::size_t>(1, jobs.size())));
    jobs.start();
    ready = true;
    log::info("host", "listening on http://" + bound);

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    int sig = 0;
    sigwait(&signals, &sig);

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
