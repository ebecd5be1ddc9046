#include "http_server.hpp"

#include "config.hpp"
#include "connection.hpp"
#include "listener.hpp"
#include "log.hpp"

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
    std::shared_ptr<listener> accepting;
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

http_server::http_server(const config& cfg, const router& routes, const authenticator& auth, worker_pool& pool,
                         std::function<bool()> ready)
    : state_(std::make_shared<state>()) {
    state_->ctx = std::make_shared<connection_context>(cfg, routes, auth, pool, std::move(ready));
    state_->ioc.emplace(static_cast<int>(cfg.io_threads ? cfg.io_threads : 1));
}

http_server::~http_server() {
    stop();
    auto& s = *state_;
    // No I/O thread and no worker runs any more: requests whose last wake never ran still hold
    // their connection (and it them); break those cycles so that every exchange, spool and body
    // source is released now, before the plugins shut down.
    for (auto& c : s.live()) c->forget_request();
    s.accepting.reset();
    s.work.reset();
    s.ioc.reset();  // destroys pending handlers, and with them the connections
}

std::string http_server::start() {
    auto& s = *state_;
    auto ctx = s.ctx;
    auto& ioc = *s.ioc;
    s.accepting = std::make_shared<listener>(ioc, ctx->cfg, [ctx](asio::ip::tcp::socket socket, connection_slot slot) {
        std::make_shared<connection>(std::move(socket), ctx, std::move(slot))->start();
    });
    std::string bound = s.accepting->open();
    s.work.emplace(ioc.get_executor());
    s.accepting->start();
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
    if (s.accepting) s.accepting->stop();
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
    if (s.accepting) {
        std::unique_lock lock(s.ctx->mutex);
        s.ctx->changed.wait_for(lock, std::chrono::seconds(2), [&] { return s.accepting->open_connections() == 0; });
    }
    s.work.reset();
    if (s.ioc) s.ioc->stop();
    for (auto& t : s.threads)
        if (t.joinable()) t.join();
    s.threads.clear();
}

}  // namespace aqd
