// The HTTP/1.1 server: the I/O threads, the listener (listener.hpp) and the connections
// (connection.hpp), and the shutdown sequence.
//
// What the host does to protect itself from hostile, slow and unlucky clients (README, "How the
// host protects itself") lives in those parts: request bodies are spooled before a handler runs,
// responses are pulled or sent from files without a thread waiting on the client, per-principal
// and per-connection limits, a bounded worker queue, a minimum transfer rate, strict framing.
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
    // Destroy only after the worker pool stopped: the last requests are let go here.
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
