#include "http_server.hpp"

#include "config.hpp"
#include "connection.hpp"
#include "host_metrics.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "tls.hpp"
#include "worker_pool.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <thread>
#include <vector>

namespace aqd {

namespace asio = boost::asio;

struct http_server::state {
    std::shared_ptr<connection_context> ctx;
    std::optional<asio::io_context> ioc;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::vector<std::shared_ptr<listener>> listeners;  // plain, then TLS; they share the connection counts

    std::uint32_t open_connections() const { return listeners.empty() ? 0 : listeners.front()->open_connections(); }
    std::vector<std::thread> threads;
    bool stopped = false;

    // Every live connection, kept alive for the duration of a call on it.
    std::vector<std::shared_ptr<connection>> live() {
        std::vector<std::shared_ptr<connection>> out;
        std::lock_guard lock(ctx->mutex);
        out.reserve(ctx->connections.size());
        for (connection* c : ctx->connections)
            if (auto p = c->weak_from_this().lock()) out.push_back(std::move(p));
        return out;
    }
};

http_server::http_server(server_parts parts) : state_(std::make_shared<state>()) {
    const unsigned io_threads = parts.cfg.io_threads ? parts.cfg.io_threads : 1;
    metrics::registry& registry = parts.metrics.registry;
    state_->ctx = std::make_shared<connection_context>(std::move(parts));
    state_->ioc.emplace(static_cast<int>(io_threads));

    // Sampled when scraped; a scrape only comes through this server, so the state is there.
    std::weak_ptr<state> weak = state_;
    auto sample = [weak](auto fn) {
        return [weak, fn]() -> double {
            const auto s = weak.lock();
            return s ? fn(*s) : 0.0;
        };
    };
    registry.add_sampled(metrics::kind::gauge, "aqueduct_http_connections_open", "Client connections open now.",
                         sample([](state& s) { return double(s.open_connections()); }));
    registry.add_sampled(metrics::kind::gauge, "aqueduct_http_requests_in_flight",
                         "Requests admitted and not finished (from the accepted head to the end of the response).",
                         sample([](state& s) {
                             std::lock_guard lock(s.ctx->mutex);
                             return double(s.ctx->in_flight);
                         }));
    registry.add_sampled(metrics::kind::gauge, "aqueduct_handler_queue_depth",
                         "Requests waiting for a handler thread (the limit is max_queued_requests).",
                         sample([](state& s) { return double(s.ctx->pool.queued()); }));
    registry.add_sampled(metrics::kind::gauge, "aqueduct_spool_bytes",
                         "Bytes of request bodies being received or waiting for their handler, in memory and on "
                         "disk (the limit is max_spool_bytes).",
                         sample([](state& s) { return double(s.ctx->spool.used()); }));
    registry.add_sampled(metrics::kind::gauge, "aqueduct_streaming_bodies",
                         "Handlers reading a request body that is still arriving (the limit is "
                         "max_streaming_bodies).",
                         sample([](state& s) { return double(s.ctx->streaming.load(std::memory_order_relaxed)); }));
}

http_server::~http_server() {
    stop();
    auto& s = *state_;
    // No I/O thread and no worker runs any more: requests whose last wake never ran still hold
    // their connection (and it them); break those cycles so that every exchange, spool and body
    // source is released now, before the plugins shut down.
    for (auto& c : s.live()) c->forget_request();
    s.listeners.clear();
    s.work.reset();
    s.ioc.reset();  // destroys pending handlers, and with them the connections
}

http_server::addresses http_server::start() {
    auto& s = *state_;
    auto ctx = s.ctx;
    auto& ioc = *s.ioc;
    const config& cfg = ctx->cfg;
    auto counts = connection_slot::make_counts();
    addresses bound;
    s.listeners.push_back(std::make_shared<listener>(
        ioc, cfg, cfg.listen_address, cfg.listen_port, counts, false, ctx->metrics,
        [ctx](asio::ip::tcp::socket socket, connection_slot slot) {
            std::make_shared<connection>(std::move(socket), ctx, std::move(slot))->start();
        }));
    bound.plain = s.listeners.back()->open();
    if (const tls_contexts* tls = ctx->tls) {
        s.listeners.push_back(std::make_shared<listener>(
            ioc, cfg, cfg.tls.listen_address, cfg.tls.listen_port, counts, true, ctx->metrics,
            [ctx, tls](asio::ip::tcp::socket socket, connection_slot slot) {
                // The context in force at accept; a reload later does not change this connection's.
                std::make_shared<connection>(std::move(socket), ctx, std::move(slot), tls->current())->start();
            }));
        bound.tls = s.listeners.back()->open();
    }
    s.work.emplace(ioc.get_executor());
    for (auto& l : s.listeners) l->start();
    const unsigned n = ctx->cfg.io_threads ? ctx->cfg.io_threads : 1;
    for (unsigned i = 0; i < n; ++i)
        s.threads.emplace_back([&ioc] {
            // Completion handlers catch their own exceptions; this is the last line, so that an
            // escaped one costs a log line rather than the thread (and with it the server).
            for (;;) {
                try {
                    ioc.run();
                    return;
                } catch (const std::exception& e) {
                    log::error("http", std::string("I/O thread caught: ") + e.what());
                } catch (...) {
                    log::error("http", "I/O thread caught an unknown exception");
                }
            }
        });
    return bound;
}

void http_server::stop_accepting() {
    auto& s = *state_;
    if (s.ctx->stopping.exchange(true)) return;
    for (auto& l : s.listeners) l->stop();
    for (auto& c : s.live()) c->shutdown_if_idle();
}

std::size_t http_server::drain(std::chrono::milliseconds timeout) {
    auto& ctx = *state_->ctx;
    std::unique_lock lock(ctx.mutex);
    ctx.changed.wait_for(lock, timeout, [&] { return ctx.in_flight == 0; });
    return ctx.in_flight;
}

void http_server::stop() {
    auto& s = *state_;
    if (s.stopped) return;
    s.stopped = true;
    stop_accepting();
    for (auto& c : s.live()) c->abort();
    // Let the aborts run (they close the sockets) before the I/O threads stop; otherwise the
    // clients stay connected until the process exits.
    if (!s.listeners.empty()) {
        std::unique_lock lock(s.ctx->mutex);
        s.ctx->changed.wait_for(lock, std::chrono::seconds(2), [&] { return s.open_connections() == 0; });
    }
    s.work.reset();
    if (s.ioc) s.ioc->stop();
    for (auto& t : s.threads)
        if (t.joinable()) t.join();
    s.threads.clear();
}

}  // namespace aqd
