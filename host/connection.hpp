// One client connection: reads requests, hands them to handlers, writes responses.
//
// The read side and the write side each have an explicit state (as in Beast's advanced server
// example, where reading and writing are separate loops over one stream):
//
//   read:  [handshake ->] fresh -> head -> body -> stopped   (TLS first; a request's bytes; the handler's turn)
//                                              body -> streaming -> stopped  (a large, fast body)
//                                                      streaming <-> held  (its handler is behind)
//          idle (keep-alive, no request) -> head ...
//          draining (an early answer's unread body), lingering (closing gracefully), closed
//   write: idle -> sending / sending_file -> idle ... -> done (response written) -> idle
//
// A request's head is checked (request_decoder: strict RFC 9112 framing), routed, authenticated,
// admitted (per-principal limit, worker queue, spool budget), and only then is its body read:
// completely, into a body_spool, before the handler runs. A handler never waits on the network
// for a body; a client that trickles or vanishes costs a socket and its spool, never a thread.
//
// Streaming, the one exception: a Content-Length body of which stream_bodies_after_bytes have
// arrived (so the client sends fast enough to get there while the minimum rate holds) starts
// its handler at once, which reads the rest through a window in memory as it arrives (body_spool;
// while the window is full the connection holds: it stops reading the socket until the handler
// has caught up, so the client goes at the handler's pace). Receiving, and the handler's parsing,
// hashing and storing, then overlap instead of following each other: an upload takes the
// longer of the two, not their sum. At most max_streaming_bodies handlers stream at once
// (a quarter of the workers by default); other bodies are spooled whole, as above, so clients
// that prove fast and then slow down can hold no more threads than that. A streaming body
// still has to keep the minimum rate; one cut off, abandoned or failing to spool closes the
// connection, and its handler reads a disconnect. A handler that answers before the body is
// complete ends it: the connection stops reading, answers, and closes (lingering, so the
// client sees the answer).
//
// Memory: an idle keep-alive connection holds the socket, a timer, its strand and this object
// (about 1 KiB); buffers exist only while a request is in progress (request_state) and reads
// go through one scratch buffer per I/O thread.
//
// Timeouts: header_timeout_ms from the first byte of every request's head (from the accept for
// the first request), idle_timeout_ms between requests, body_timeout_ms as the longest silence
// while a body moves in either direction, plus the minimum transfer rate (transfer_rate).
//
// TLS (tls.hpp): a connection from the TLS listener has a tls_session on its socket; reads,
// writes, the interim 100 Continue and the linger go through it, and a file body is read and
// written through it in pieces (sendfile cannot encrypt). Everything else is the same.
//
// Every completion handler runs inside a guard: an exception closes this connection and is
// logged; it never reaches the io_context (where it would end the I/O thread).
#pragma once

#include "admission.hpp"
#include "body_spool.hpp"
#include "exchange.hpp"
#include "http_server.hpp"
#include "listener.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <string>

namespace aqd {

struct config;
class router;
class authenticator;
class worker_pool;
class connection;
class tls_context;
class tls_contexts;
class tls_session;

// What every connection of one server shares. Owned by the http_server; outlives connections.
struct connection_context {
    explicit connection_context(server_parts parts);

    const config& cfg;
    const router& routes;
    const authenticator& auth;
    worker_pool& pool;
    host_metrics& metrics;
    access_log& access;
    std::function<bool()> live;                          // answers /healthz
    std::function<std::vector<std::string>()> not_ready; // answers /readyz
    const tls_contexts* tls;                             // null: no TLS listener
    admission principals;
    spool_budget spool;
    std::atomic<std::uint32_t> streaming{0};  // handlers reading a body that still arrives
    std::atomic<bool> stopping{false};

    // Requests from an accepted head until the connection is done with them (drain waits).
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t in_flight = 0;
    // Every connection object alive (registered by start, removed by its destructor).
    std::unordered_set<connection*> connections;

    void request_started();
    void request_finished();
};

class connection : public std::enable_shared_from_this<connection>, public exchange::owner {
public:
    // `tls`: the context of the TLS listener this connection came from; null for plain HTTP.
    connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<connection_context> ctx, connection_slot slot,
               std::shared_ptr<const tls_context> tls = nullptr);
    ~connection() override;

    void start();
    // Thread: any. Shutdown: an idle connection closes now, a busy one after its response.
    void shutdown_if_idle();
    // Thread: any. The drain deadline passed: close now.
    void abort();
    // Thread: any (exchange::owner). The handler or a source produced output.
    void wake() override;
    // Only when no thread runs the io_context or the worker pool (final teardown): lets go of
    // the request, which breaks the connection <-> exchange cycle of a request whose last wake
    // was never run.
    void forget_request();

private:
    enum class read_state { handshake, fresh, idle, head, body, streaming, held, stopped, draining, lingering, closed };
    enum class write_state { idle, sending, sending_file, done, closed };
    // What follows a response the host composed itself.
    enum class then { next_request, drain, linger, close };

    struct request_state;
    using time_point = std::chrono::steady_clock::time_point;

    template <class Fn>
    void guarded(Fn&& fn) noexcept;

    // ---- TLS ---------------------------------------------------------------------------------
    void handshake();
    void refuse_plain_http();
    // Waits until the socket is readable or writable, then runs `next` (on the strand).
    template <class Next>
    void when_ready(boost::asio::socket_base::wait_type what, Next next);
    void write_tls();

    // ---- read side ---------------------------------------------------------------------------
    bool reading() const;
    void read_more();
    void wait_readable();
    void consume(std::string_view bytes);
    void begin_request();
    void on_head();
    void on_body_bytes();
    void dispatch();
    bool may_stream();
    void begin_streaming();
    void hold_reading();
    void resume_reading();
    void end_streaming();
    // Creates the exchange and posts the handler; false (and the answer sent) when the worker
    // queue refused it.
    bool start_handler();
    void peer_gone(const boost::system::error_code& ec);

    // ---- write side --------------------------------------------------------------------------
    bool send_interim();
    void pump();
    void write_item(exchange::outbound item);
    void start_write(bool last);
    void on_written(boost::system::error_code ec, std::size_t n, bool last);
    void send_file();
    void answer(int status, std::string_view message, then next, header_list extra = {},
                std::string_view type = {}, std::string_view param = {}, std::string_view code = {});
    void send_host_response(int status, header_list headers, std::string body, then next);
    then after_unread_body() const;

    // ---- end of a request --------------------------------------------------------------------
    void finish_request();
    void enter_idle();
    void next_request();
    void linger_close();
    void close();
    void reset();  // close, dropping unsent bytes (a client that stopped reading)

    // ---- time --------------------------------------------------------------------------------
    time_point next_deadline() const;
    void arm_timer();
    void on_timer(boost::system::error_code ec);
    void cut_slow(const char* what);
    std::string peer() const;
    // /healthz, /readyz and /metrics: answered by the host itself. False for any other path.
    bool host_route(const std::string& method, const std::string& path);

    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;
    std::shared_ptr<connection_context> ctx_;
    connection_slot slot_;
    read_state read_ = read_state::fresh;
    write_state write_ = write_state::idle;
    time_point deadline_{};              // header, idle or linger deadline (the read states that have one)
    // When the timer's outstanding wait ends; `never` when none is outstanding. A wait may end
    // before next_deadline() (see arm_timer), never after it.
    time_point timer_expiry_ = time_point::max();
    std::unique_ptr<request_state> req_;  // only while a request is in progress
    std::string pending_;                 // bytes of the next request that came early (pipelining)
    std::string client_;                  // the peer's address, for the access log
    bool read_waiting_ = false;           // an async wait for readability is outstanding
    bool write_last_ = false;             // TLS: the write in progress ends the response
    std::shared_ptr<const tls_context> tls_context_;  // TLS connections: until the handshake begins
    std::unique_ptr<tls_session> tls_;                // TLS connections: the session on socket_
    // A pump is posted to the strand and has not begun: another wake() has nothing to add.
    std::atomic<bool> pump_posted_{false};
};

}  // namespace aqd
