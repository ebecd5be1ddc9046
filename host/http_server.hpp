// The HTTP/1.1 server: accepts connections, parses requests with Boost.Beast, answers what the
// host can answer itself (404, 405, 401, 413, 431, 400, /healthz) and hands every other request
// to a plugin handler on the worker pool through an exchange.
//
// Per connection: keep-alive, chunked request bodies, Expect: 100-continue, a header size
// limit, a header timeout, an idle timeout, a timeout between two pieces of a body. A request
// refused before its body was read is answered first, then its body is drained (up to
// max_drain_bytes) or the connection is closed gracefully (shutdown of the sending side, then
// the rest is read and discarded for a moment), so clients see the 4xx rather than a reset.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace aqd {

struct config;
class router;
class authenticator;
class worker_pool;

class http_server {
public:
    // `ready` answers /healthz: true when the host and every plugin are ready.
    http_server(const config& cfg, const router& routes, const authenticator& auth, worker_pool& pool,
                std::function<bool()> ready);
    ~http_server();

    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Binds (throws std::system_error on failure) and starts the I/O threads. Returns the bound
    // address as "ADDR:PORT", with the real port when the config said 0.
    std::string start();

    // Stops accepting; idle connections are closed; responses in flight end with
    // Connection: close.
    void stop_accepting();

    // Waits until no request is in flight or the timeout passed; returns how many remain.
    std::size_t drain(std::chrono::milliseconds timeout);

    // Disconnects whatever remains (blocked handlers get AQ_ERR_DISCONNECTED) and joins the I/O
    // threads. Idempotent.
    void stop();

    struct state;

private:
    std::shared_ptr<state> state_;
};

}  // namespace aqd
