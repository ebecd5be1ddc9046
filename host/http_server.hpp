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
#include <vector>

namespace aqd {

struct config;
struct host_metrics;
class router;
class authenticator;
class worker_pool;
class access_log;
class tls_contexts;

// What the server uses of the rest of the host. Everything outlives the server.
struct server_parts {
    const config& cfg;
    const router& routes;
    const authenticator& auth;  // its tokens may be replaced while the server runs
    worker_pool& pool;
    host_metrics& metrics;      // counted into; its registry answers /metrics
    access_log& access;
    std::function<bool()> live;                          // /healthz: initialised and not stopping
    std::function<std::vector<std::string>()> not_ready; // /readyz: the plugins not ready now
    const tls_contexts* tls = nullptr;                   // the TLS listener's contexts; null: no TLS
};

class http_server {
public:
    // Registers the server's sampled metrics (open connections, requests in flight, queue
    // depth, spool bytes) with parts.metrics.
    explicit http_server(server_parts parts);
    // Destroy only after the worker pool stopped: the last requests are let go here.
    ~http_server();

    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Binds the plain listener and, with TLS, the TLS one (throws std::system_error on failure)
    // and starts the I/O threads. Returns the bound addresses as "ADDR:PORT", with the real port
    // when the config said 0; `tls` is empty without TLS.
    struct addresses {
        std::string plain, tls;
    };
    addresses start();

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
