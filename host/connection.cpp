#include "connection.hpp"

#include "access_log.hpp"
#include "auth.hpp"
#include "config.hpp"
#include "host_metrics.hpp"
#include "log.hpp"
#include "request_decoder.hpp"
#include "request_id.hpp"
#include "response_head.hpp"
#include "response_rules.hpp"
#include "router.hpp"
#include "tls.hpp"
#include "transfer_rate.hpp"
#include "worker_pool.hpp"

#include <aqueduct/plugin.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstdio>

#include <sys/sendfile.h>
#include <unistd.h>

namespace aqd {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Reads go through one buffer per I/O thread: a connection holds no read buffer of its own,
// whether idle or receiving, and the bytes are copied out (to the head, the spool or `pending_`)
// before the thread moves on.
constexpr std::size_t scratch_bytes = body_spool::window_block_bytes;  // a read fits a window block
// How far a streaming body may run ahead of its handler, in memory (body_spool's window): a few
// of the handler's reads, so that neither side waits for the other while both keep up.
constexpr std::size_t streaming_window_bytes = 4 * 1024 * 1024;
char* scratch() {
    thread_local std::unique_ptr<char[]> buffer(new char[scratch_bytes]);
    return buffer.get();
}
// Reads per turn before the connection lets others use the thread.
constexpr int reads_per_turn = 16;
// How long a graceful close keeps reading (and discarding) after the last response.
constexpr auto linger_time = std::chrono::seconds(2);
// sendfile: bytes per call, and per turn before yielding the thread.
constexpr std::size_t file_piece_bytes = 1 << 20;
// A file sent through TLS: bytes read and encrypted per step.
constexpr std::size_t tls_file_piece_bytes = 64 * 1024;
constexpr std::uint64_t file_bytes_per_turn = 4 << 20;
constexpr auto never = clock_type::time_point::max();

constexpr std::string_view crlf = "\r\n";
constexpr std::string_view last_chunk = "0\r\n\r\n";

}  // namespace

// ---- shared state --------------------------------------------------------------------------

connection_context::connection_context(server_parts parts)
    : cfg(parts.cfg), routes(parts.routes), auth(parts.auth), pool(parts.pool), metrics(parts.metrics),
      access(parts.access), live(std::move(parts.live)), not_ready(std::move(parts.not_ready)), tls(parts.tls),
      principals(cfg.max_requests_per_principal), spool(cfg.max_spool_bytes) {}

void connection_context::request_started() {
    std::lock_guard lock(mutex);
    ++in_flight;
}

void connection_context::request_finished() {
    {
        std::lock_guard lock(mutex);
        --in_flight;
    }
    changed.notify_all();
}

// Everything that exists only while a request is in progress, so that an idle connection holds
// none of it.
struct connection::request_state {
    request_state(connection_context& c, const std::string& client)
        : ctx(c), client(client), decoder(c.cfg.max_header_bytes),
          rate(c.cfg.min_body_rate_bytes_per_s, milliseconds(c.cfg.body_rate_window_ms)) {}

    // A request ends when this state goes, however it ended (answered, cut off, the client
    // gone): the access log and the metrics hear about it here, exactly once. A request whose
    // head never arrived and that got no answer (a client that sent a few bytes and left) is
    // not a request to either.
    ~request_state() {
        // The decoder keeps the request line however far the request got.
        const request_line_and_fields& line = decoder.head();
        if (status == 0 && line.method.empty()) return;
        try {
            request_record rec;
            rec.request_id = request_id;
            rec.client = client;
            rec.method = line.method;
            rec.route = route_label;
            rec.path = std::string_view(line.target).substr(0, line.target.find('?'));
            rec.token = who ? std::string_view(who->token_name) : std::string_view();
            rec.status = status ? status : 499;  // nginx's "client closed request": no response began
            rec.bytes_in = bytes_in;
            rec.bytes_out = bytes_out;
            rec.duration = clock_type::now() - started;
            ctx.metrics.request_finished(rec.route, rec.method, rec.status, rec.bytes_in, rec.bytes_out, rec.duration);
            ctx.access.write(rec);
        } catch (const std::exception& e) {
            log::error("http", std::string("recording a finished request failed: ") + e.what());
        }
    }

    // The request counts as in flight (server drain) from admission until this state goes.
    struct in_flight_mark {
        connection_context* ctx = nullptr;
        in_flight_mark() = default;
        explicit in_flight_mark(connection_context* c) : ctx(c) { ctx->request_started(); }
        in_flight_mark(in_flight_mark&& o) noexcept : ctx(std::exchange(o.ctx, nullptr)) {}
        in_flight_mark& operator=(in_flight_mark&& o) noexcept {
            std::swap(ctx, o.ctx);
            return *this;
        }
        ~in_flight_mark() {
            if (ctx) ctx->request_finished();
        }
    };

    connection_context& ctx;
    const std::string& client;  // the connection's, which outlives its requests

    // What the access log and the metrics say about the request.
    time_point started = clock_type::now();  // its first byte
    int status = 0;                          // of the response that began; 0: none
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::string_view route_label;            // the route's pattern or a host route; empty: none
    std::shared_ptr<const principal> who;

    request_decoder decoder;
    std::string request_id;
    std::string chunk_scratch;  // a chunked body's bytes decoded from the latest read
    std::string_view decoded;   // the body bytes of the latest read (in it, or in chunk_scratch)
    const route_target* route = nullptr;
    exchange::request_head head;
    std::shared_ptr<body_spool> spool;  // the connection's until the body is complete or abandoned
    admission::ticket ticket;
    in_flight_mark counted;
    // A place among max_streaming_bodies, while this request's handler reads a body that is
    // still arriving.
    struct streaming_place {
        std::atomic<std::uint32_t>* count = nullptr;
        streaming_place() = default;
        streaming_place(const streaming_place&) = delete;
        streaming_place& operator=(const streaming_place&) = delete;
        ~streaming_place() { leave(); }
        bool enter(std::atomic<std::uint32_t>& c, std::uint32_t limit) {
            std::uint32_t cur = c.load(std::memory_order_relaxed);
            do {
                if (cur >= limit) return false;
            } while (!c.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
            count = &c;
            return true;
        }
        void leave() {
            if (count) count->fetch_sub(1, std::memory_order_relaxed);
            count = nullptr;
        }
    } streaming;
    std::shared_ptr<exchange> ex;  // from dispatch on
    bool keep_alive = true;
    bool http10 = false;
    then after_answer = then::next_request;  // for a response the host composed

    // Pace of the body moving now (the request's, then the response's).
    transfer_rate rate;
    time_point activity{};   // last body byte read, or when the current write began
    time_point rate_mark{};  // up to here, waiting time was given to `rate`

    // The response on the wire.
    response_framing framing = response_framing::length;
    std::string out_head;   // status line and fields, or a chunk-size line
    std::string out_data;   // body bytes
    std::string_view out_tail;
    unique_fd file;
    std::uint64_t file_offset = 0, file_left = 0;
    std::size_t out_sent = 0;  // TLS: bytes of head + data + tail written so far
};

// ---- lifetime ----------------------------------------------------------------------------------

connection::connection(tcp::socket socket, std::shared_ptr<connection_context> ctx, connection_slot slot,
                       std::shared_ptr<const tls_context> tls)
    : socket_(std::move(socket)), timer_(socket_.get_executor()), ctx_(std::move(ctx)), slot_(std::move(slot)),
      tls_context_(std::move(tls)) {}

connection::~connection() {
    std::lock_guard lock(ctx_->mutex);
    ctx_->connections.erase(this);
}

template <class Fn>
void connection::guarded(Fn&& fn) noexcept {
    try {
        // Lines logged while this connection works on a request carry its id.
        log::request_scope scope(req_ ? std::string_view(req_->request_id) : std::string_view());
        fn();
    } catch (const std::exception& e) {
        try {
            log::error("http", peer() + ": connection failed: " + e.what());
        } catch (...) {
        }
        close();
    } catch (...) {
        try {
            log::error("http", peer() + ": connection failed with an unknown exception");
        } catch (...) {
        }
        close();
    }
}

void connection::start() {
    {
        std::lock_guard lock(ctx_->mutex);
        ctx_->connections.insert(this);
    }
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
        self->guarded([&] {
            if (self->ctx_->stopping) return self->close();
            boost::system::error_code ec;
            const auto remote = self->socket_.remote_endpoint(ec);
            if (!ec) self->client_ = remote.address().to_string();
            self->socket_.set_option(tcp::no_delay(true), ec);
            self->socket_.non_blocking(true, ec);
            // The header time includes a TLS handshake: a client that connects and says nothing
            // costs the same either way.
            self->deadline_ = clock_type::now() + milliseconds(self->ctx_->cfg.header_timeout_ms);
            self->arm_timer();
            if (self->tls_context_) {
                self->tls_ = std::make_unique<tls_session>(*self->tls_context_, self->socket_.native_handle());
                self->tls_context_.reset();  // the session holds the context now
                self->read_ = read_state::handshake;
                return self->handshake();
            }
            self->read_more();
        });
    });
}

void connection::shutdown_if_idle() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
        self->guarded([&] {
            if (self->read_ == read_state::handshake || self->read_ == read_state::fresh ||
                self->read_ == read_state::idle)
                self->close();
        });
    });
}

void connection::abort() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->guarded([&] { self->close(); }); });
}

// A handler that answers wakes the connection twice, once with its response and once when it
// returns; a download's source once per piece. Each wake was a post through the strand (a
// queued operation, two mutexes, often an eventfd write to wake a network thread). Now a wake
// posts only when no pump is waiting to begin: that pump will see what the later wakes
// announce, since it clears the flag before it reads the exchange (acq_rel on both sides).
void connection::wake() {
    if (pump_posted_.exchange(true, std::memory_order_acq_rel)) return;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
        self->pump_posted_.exchange(false, std::memory_order_acq_rel);
        self->guarded([&] { self->pump(); });
    });
}

void connection::forget_request() {
    if (req_ && req_->ex) req_->ex->disconnect();
    req_.reset();
}

std::string connection::peer() const {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (ec) return "client";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// ---- TLS -----------------------------------------------------------------------------------------

template <class Next>
void connection::when_ready(asio::socket_base::wait_type what, Next next) {
    socket_.async_wait(what, [self = shared_from_this(), next](boost::system::error_code ec) {
        self->guarded([&] {
            if (ec == asio::error::operation_aborted || self->read_ == read_state::closed) return;
            if (ec) return self->peer_gone(ec);
            (self.get()->*next)();
        });
    });
}

void connection::handshake() {
    if (read_ != read_state::handshake) return;
    switch (tls_->handshake()) {
    case tls_session::outcome::done:
        read_ = read_state::fresh;
        return read_more();
    case tls_session::outcome::want_read: return when_ready(tcp::socket::wait_read, &connection::handshake);
    case tls_session::outcome::want_write: return when_ready(tcp::socket::wait_write, &connection::handshake);
    case tls_session::outcome::closed: return close();
    case tls_session::outcome::failed:
        if (tls_->plain_http()) return refuse_plain_http();
        log::debug("http", peer() + ": TLS handshake failed: " + tls_->error());
        return close();
    }
}

// A client that speaks plain HTTP to the TLS port gets a plain answer saying so (as nginx does),
// not a hang or a bare reset.
void connection::refuse_plain_http() {
    static const header_list headers = {{"Content-Type", "application/json"}};
    const std::string bytes = closing_answer(
        400, headers,
        aq::error_envelope("This port speaks HTTPS: the plain HTTP request was sent to the TLS port.",
                           "invalid_request_error", "", "plain_http_to_tls_port"));
    (void)::send(socket_.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    log::debug("http", peer() + ": plain HTTP on the TLS port; answered 400");
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    close();
}

// Writes out_head, out_data and out_tail through the TLS session, waiting for the socket when it
// is full; then on_written, as an async_write would.
void connection::write_tls() {
    if (write_ != write_state::sending) return;
    auto& r = *req_;
    const std::string_view parts[] = {r.out_head, r.out_data, r.out_tail};
    const std::size_t total = parts[0].size() + parts[1].size() + parts[2].size();
    while (r.out_sent < total) {
        std::size_t skip = r.out_sent, i = 0;
        while (skip >= parts[i].size()) skip -= parts[i++].size();
        std::size_t n = 0;
        switch (tls_->write(parts[i].data() + skip, parts[i].size() - skip, n)) {
        case tls_session::outcome::done: r.out_sent += n; continue;
        case tls_session::outcome::want_write: return when_ready(tcp::socket::wait_write, &connection::write_tls);
        case tls_session::outcome::want_read: return when_ready(tcp::socket::wait_read, &connection::write_tls);
        case tls_session::outcome::closed:
        case tls_session::outcome::failed: return peer_gone(asio::error::connection_reset);
        }
    }
    // Completed as async_write completes: from a fresh handler, never inline, so a long run of
    // pipelined requests answered at once cannot nest calls without bound.
    asio::post(socket_.get_executor(), [self = shared_from_this(), total, last = write_last_] {
        self->guarded([&] { self->on_written({}, total, last); });
    });
}

// ---- read side -----------------------------------------------------------------------------

bool connection::reading() const {
    switch (read_) {
    case read_state::fresh:
    case read_state::idle:
    case read_state::head:
    case read_state::body:
    case read_state::streaming:
    case read_state::draining:
    case read_state::lingering:
        return true;
    case read_state::held:  // until the handler has read half of the window
        return false;
    default:
        return false;
    }
}

void connection::read_more() {
    // A pending wait will call back when bytes are there (asio re-arms epoll when the wait is
    // started, so bytes that arrived earlier are seen too).
    if (read_waiting_) return;
    char* buf = scratch();
    for (int i = 0; i < reads_per_turn; ++i) {
        if (!reading()) return;
        if (tls_) {
            std::size_t n = 0;
            switch (tls_->read(buf, scratch_bytes, n)) {
            case tls_session::outcome::done: consume(std::string_view(buf, n)); continue;
            case tls_session::outcome::want_read: return wait_readable();
            case tls_session::outcome::want_write:
                return when_ready(tcp::socket::wait_write, &connection::read_more);  // a TLS 1.3 key update
            case tls_session::outcome::closed: return peer_gone(asio::error::eof);
            case tls_session::outcome::failed: return peer_gone(asio::error::connection_reset);
            }
        }
        boost::system::error_code ec;
        const std::size_t n = socket_.read_some(asio::buffer(buf, scratch_bytes), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
        if (ec) return peer_gone(ec);
        consume(std::string_view(buf, n));
    }
    if (!reading()) return;
    // More may be waiting: come back after others had a turn. Bytes OpenSSL has decrypted
    // already would never make the socket readable, so a TLS connection is called back at once.
    if (tls_ && tls_->pending())
        asio::post(socket_.get_executor(), [self = shared_from_this()] { self->guarded([&] { self->read_more(); }); });
    else
        wait_readable();
}

void connection::wait_readable() {
    read_waiting_ = true;
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
        self->guarded([&] {
            self->read_waiting_ = false;
            if (ec == asio::error::operation_aborted || self->read_ == read_state::closed) return;
            if (ec) return self->peer_gone(ec);
            self->read_more();
        });
    });
}

void connection::peer_gone(const boost::system::error_code& ec) {
    if (read_ == read_state::body || read_ == read_state::streaming || read_ == read_state::held)
        log::debug("http", peer() + ": client went away during the request body (" + ec.message() + ")");
    close();
}

void connection::consume(std::string_view bytes) {
    while (!bytes.empty()) {
        switch (read_) {
        case read_state::fresh:
        case read_state::idle:
            begin_request();
            break;
        case read_state::head: {
            auto& r = *req_;
            const std::size_t used = r.decoder.feed(bytes, r.chunk_scratch, r.decoded);
            r.bytes_in += used;
            bytes.remove_prefix(used);
            switch (r.decoder.current()) {
            case request_decoder::state::head:
                break;
            case request_decoder::state::failed:
                return answer(r.decoder.error().status, r.decoder.error().message, then::linger);
            case request_decoder::state::body:
            case request_decoder::state::complete:
                on_head();
                break;
            }
            break;
        }
        case read_state::body:
        case read_state::streaming:
        case read_state::held:  // never with bytes left: holding follows the read's last body byte
        case read_state::draining: {
            auto& r = *req_;
            const std::size_t used = r.decoder.feed(bytes, r.chunk_scratch, r.decoded);
            r.bytes_in += used;
            bytes.remove_prefix(used);
            r.activity = clock_type::now();
            if (read_ != read_state::draining) {
                on_body_bytes();
                break;
            }
            // Draining: the bytes are thrown away; the end of the body starts the next request.
            if (r.decoder.current() == request_decoder::state::failed) return close();
            if (r.decoder.current() == request_decoder::state::complete) enter_idle();
            break;
        }
        case read_state::stopped:
            // The handler's turn: whatever follows is the next request, kept until it is due.
            pending_.append(bytes);
            return;
        case read_state::handshake:  // never: reads begin after the handshake
        case read_state::lingering:
        case read_state::closed:
            return;
        }
    }
}

void connection::begin_request() {
    const bool first = read_ == read_state::fresh;
    req_ = std::make_unique<request_state>(*ctx_, client_);
    // Every answer carries an id, including the 400 for a request that never parsed.
    req_->request_id = make_request_id();
    log::request_scope::switch_to(req_->request_id);
    read_ = read_state::head;
    // The first request's header time runs from the accept; a later one's from its first byte.
    if (!first) deadline_ = clock_type::now() + milliseconds(ctx_->cfg.header_timeout_ms);
    arm_timer();
}

bool connection::host_route(const std::string& method, const std::string& path) {
    auto& r = *req_;
    const bool health = path == "/healthz" || path == "/v1/healthz";
    const bool ready = path == "/readyz" || path == "/v1/readyz";
    const bool metrics = path == "/metrics" && ctx_->cfg.metrics != metrics_access::off;
    if (!health && !ready && !metrics) return false;
    r.route_label = health ? "/healthz" : ready ? "/readyz" : "/metrics";
    if (method != "GET") {
        answer(405, "Method " + method + " is not allowed on " + path + ".", after_unread_body(), {{"Allow", "GET"}});
        return true;
    }
    if (health) {
        // Liveness: the process serves. Readiness (below) also asks the plugins.
        const bool ok = ctx_->live() && !ctx_->stopping;
        send_host_response(ok ? 200 : 503, {{"Content-Type", "application/json"}},
                           ok ? R"({"status":"ok"})" : R"({"status":"unavailable"})", after_unread_body());
    } else if (ready) {
        const bool up = ctx_->live() && !ctx_->stopping;
        const std::vector<std::string> waiting = up ? ctx_->not_ready() : std::vector<std::string>{};
        std::string body;
        if (up && waiting.empty()) {
            body = R"({"status":"ready"})";
        } else {
            body = R"({"status":"unavailable","not_ready":[)";
            for (std::size_t i = 0; i < waiting.size(); ++i) body += (i ? ",\"" : "\"") + waiting[i] + "\"";
            body += "]}";
        }
        send_host_response(up && waiting.empty() ? 200 : 503, {{"Content-Type", "application/json"}}, std::move(body),
                           after_unread_body());
    } else {
        if (ctx_->cfg.metrics == metrics_access::token) {
            const std::string* authorization = r.decoder.head().field("authorization");
            if (authorization) r.who = ctx_->auth.authenticate(*authorization);
            if (!r.who) {
                answer(401, authorization ? "Incorrect API key provided." : "You didn't provide an API key.",
                       after_unread_body(), {{"WWW-Authenticate", "Bearer"}}, "invalid_request_error", "",
                       authorization ? "invalid_api_key" : "");
                return true;
            }
        }
        send_host_response(200, {{"Content-Type", std::string(metrics::registry::content_type)}},
                           ctx_->metrics.registry.expose(), after_unread_body());
    }
    return true;
}

connection::then connection::after_unread_body() const {
    const auto& r = *req_;
    const auto& h = r.decoder.head();
    if (r.decoder.current() == request_decoder::state::complete) return r.keep_alive ? then::next_request : then::linger;
    // A client that waits for 100 Continue never sends this body; one that sent it anyway is
    // read to its end if that is cheap, so the connection can serve the next request.
    if (r.keep_alive && !h.expect_continue && h.framing == body_framing::length &&
        h.content_length - r.decoder.body_bytes() <= ctx_->cfg.max_drain_bytes)
        return then::drain;
    return then::linger;
}

void connection::on_head() {
    auto& r = *req_;
    const auto& h = r.decoder.head();
    r.http10 = h.version == 10;
    r.keep_alive = h.keep_alive && !ctx_->stopping;
    // The client's own id, when it is sane, follows the request from here on (also into the
    // answers below); the generated one served only a request that never parsed.
    if (const std::string* id = h.field("x-request-id"); id && acceptable_request_id(*id)) {
        r.request_id = *id;
        log::request_scope::switch_to(r.request_id);
    }
    const std::string_view target = h.target;
    if (target.empty() || target.front() != '/')
        return answer(400, "Malformed HTTP request: the request target must start with '/'.", then::linger);
    const auto qpos = target.find('?');
    r.head.method = h.method;
    r.head.path = std::string(target.substr(0, qpos));
    r.head.query = qpos == std::string_view::npos ? std::string() : std::string(target.substr(qpos + 1));
    const std::string& method = r.head.method;
    const std::string& path = r.head.path;
    const bool has_body = h.framing != body_framing::none;

    if (host_route(method, path)) return;

    auto found = ctx_->routes.find(method, path);
    if (found.result == router::outcome::not_found)
        return answer(404, "Invalid URL (" + method + " " + path + ").", after_unread_body());
    if (found.result == router::outcome::method_not_allowed)
        return answer(405, "Method " + method + " is not allowed on " + path + ".", after_unread_body(),
                      {{"Allow", found.allow}});
    const route_target& route = *found.target;
    r.route = &route;
    r.route_label = route.pattern;

    std::shared_ptr<const principal> who;
    if (!(route.flags & AQ_ROUTE_PUBLIC)) {
        const std::string* authorization = h.field("authorization");
        if (!authorization)
            return answer(401,
                          "You didn't provide an API key. You need to provide your API key in an Authorization "
                          "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                          after_unread_body(), {{"WWW-Authenticate", "Bearer"}}, "invalid_request_error");
        who = ctx_->auth.authenticate(*authorization);
        if (!who)
            return answer(401, "Incorrect API key provided.", after_unread_body(), {{"WWW-Authenticate", "Bearer"}},
                          "invalid_request_error", "", "invalid_api_key");
        r.who = who;
        r.ticket = ctx_->principals.try_enter(who->token_name);
        if (!r.ticket) {
            ctx_->metrics.refused_requests.counter({"principal_limit"}).add(1);
            return answer(429,
                          "Too many concurrent requests for this API key: at most " +
                              std::to_string(ctx_->principals.limit()) +
                              " at once. Retry when one of them has finished.",
                          after_unread_body(), {{"retry-after", "1"}}, "rate_limit_error", "", "rate_limit_exceeded");
        }
    }

    const std::uint64_t max_body = route.max_body_bytes;
    if (has_body && (max_body == 0 || (h.framing == body_framing::length && h.content_length > max_body))) {
        if (max_body > 0 && route.limit_status != 0)
            return answer(route.limit_status, route.limit_message, after_unread_body(), {}, {}, route.limit_param);
        return answer(413,
                      max_body == 0 ? "This endpoint does not take a request body."
                                    : "Request body of " + std::to_string(h.content_length) +
                                          " bytes exceeds the limit of " + std::to_string(max_body) +
                                          " bytes for this endpoint.",
                      after_unread_body());
    }
    // Refused before the body is read when the handlers are already behind.
    if (ctx_->pool.saturated()) {
        ctx_->metrics.refused_requests.counter({"queue_full"}).add(1);
        return answer(503, "The server is busy. Retry later.", after_unread_body(), {{"retry-after", "1"}}, "",
                      "", "overloaded");
    }

    r.head.request_id = r.request_id;
    r.head.who = who;
    r.head.content_length = h.framing == body_framing::chunked ? -1 : static_cast<std::int64_t>(h.content_length);
    r.head.params = std::move(found.params);
    r.head.headers = h.fields;
    r.head.plugin = route.plugin;
    r.counted = request_state::in_flight_mark(ctx_.get());

    if (!has_body) return dispatch();
    r.spool = std::make_shared<body_spool>(ctx_->cfg.spool_dir, ctx_->cfg.spool_memory_bytes, ctx_->spool);
    if (h.framing == body_framing::length && !r.spool->reserve_total(h.content_length)) {
        ctx_->metrics.refused_requests.counter({"spool_full"}).add(1);
        return answer(503, "The server is receiving too many request bodies at once. Retry later.",
                      after_unread_body(), {{"retry-after", "1"}}, "", "", "overloaded");
    }
    read_ = read_state::body;
    r.activity = r.rate_mark = clock_type::now();
    // Only a request that will be handled gets "100 Continue"; refusals above answered with the
    // final status instead, so the client never sends a body nobody wants.
    if (h.expect_continue && !send_interim()) return;
    arm_timer();
}

void connection::on_body_bytes() {
    auto& r = *req_;
    const bool streaming = read_ == read_state::streaming || read_ == read_state::held;
    if (r.decoder.current() == request_decoder::state::failed) {
        if (streaming) return close();  // never for a Content-Length body; the handler owns the answer
        return answer(r.decoder.error().status, r.decoder.error().message, then::linger);
    }
    r.rate.moved(r.decoded.size());
    if (r.decoder.body_bytes() > r.route->max_body_bytes) {
        // A chunked body grew past the route's limit: the handler never sees it.
        if (r.route->limit_status != 0)
            return answer(r.route->limit_status, r.route->limit_message, then::linger, {}, {}, r.route->limit_param);
        return answer(413,
                      "Request body exceeds the limit of " + std::to_string(r.route->max_body_bytes) +
                          " bytes for this endpoint.",
                      then::linger);
    }
    if (!r.decoded.empty()) {
        bool stored;
        try {
            stored = r.spool->append(r.decoded);
        } catch (const std::system_error& e) {
            log::error("http", std::string(e.what()) + " (request " + r.request_id + ")");
            if (streaming) return close();
            return answer(500, "The server could not store the request body.", then::linger);
        }
        if (!stored) {
            // Never while streaming: a Content-Length body reserved its whole length at the head.
            ctx_->metrics.refused_requests.counter({"spool_full"}).add(1);
            if (streaming) return close();
            return answer(503, "The server is receiving too many request bodies at once. Retry later.", then::linger,
                          {{"retry-after", "1"}}, "", "", "overloaded");
        }
    }
    if (r.decoder.current() == request_decoder::state::complete) return streaming ? end_streaming() : dispatch();
    if (streaming) {
        if (r.spool->hold()) hold_reading();
        return;
    }
    if (may_stream()) begin_streaming();
}

void connection::dispatch() {
    auto& r = *req_;
    read_ = read_state::stopped;
    std::string().swap(r.chunk_scratch);
    r.decoded = {};
    if (r.spool) r.spool->finish();
    if (!start_handler()) return;
    r.spool.reset();  // the exchange's now
    // The response's pace is measured afresh; the handler's own time is not limited.
    r.rate = transfer_rate(ctx_->cfg.min_body_rate_bytes_per_s, milliseconds(ctx_->cfg.body_rate_window_ms));
    arm_timer();
}

bool connection::may_stream() {
    auto& r = *req_;
    const auto& cfg = ctx_->cfg;
    // Only a Content-Length body: its whole length is reserved in the spool budget, so appending
    // cannot be refused once the handler runs, and a limit was checked at the head.
    if (cfg.stream_bodies_after_bytes == 0 || r.head.content_length < 0) return false;
    if (r.spool->size() < cfg.stream_bodies_after_bytes || !r.spool->memory_part_complete()) return false;
    if (ctx_->pool.saturated()) return false;  // the handler would only wait in the queue
    return r.streaming.enter(ctx_->streaming, cfg.max_streaming_bodies);
}

void connection::begin_streaming() {
    read_ = read_state::streaming;
    // The reader wakes this connection through its strand; a connection gone by then is not
    // kept alive for it.
    req_->spool->stream_through_memory(streaming_window_bytes, [weak = weak_from_this(), ex = socket_.get_executor()] {
        asio::post(ex, [weak] {
            if (auto self = weak.lock()) self->guarded([&] { self->resume_reading(); });
        });
    });
    if (!start_handler()) return;
    arm_timer();
}

// The window is full: the handler has not caught up. The socket is left unread (TCP makes the
// client wait), and no deadline runs: the wait is the handler's, not the client's.
void connection::hold_reading() {
    read_ = read_state::held;
    arm_timer();
}

void connection::resume_reading() {
    if (read_ != read_state::held) return;  // answered early, closed, or ended meanwhile
    auto& r = *req_;
    read_ = read_state::streaming;
    // The client's pace is measured afresh: the held time was not its own.
    r.activity = r.rate_mark = clock_type::now();
    r.rate = transfer_rate(ctx_->cfg.min_body_rate_bytes_per_s, milliseconds(ctx_->cfg.body_rate_window_ms));
    arm_timer();
    read_more();
}

// The streaming body arrived whole: the handler reads the rest at disk speed, and the
// connection waits for its answer as for any other request.
void connection::end_streaming() {
    auto& r = *req_;
    read_ = read_state::stopped;
    std::string().swap(r.chunk_scratch);
    r.decoded = {};
    r.spool->finish();
    r.spool.reset();
    r.streaming.leave();
    r.rate = transfer_rate(ctx_->cfg.min_body_rate_bytes_per_s, milliseconds(ctx_->cfg.body_rate_window_ms));
    arm_timer();
}

bool connection::start_handler() {
    auto& r = *req_;
    r.ex = std::make_shared<exchange>(std::move(r.head), shared_from_this(), r.spool, ctx_->pool,
                                      std::move(r.ticket));
    const aq_handler_fn handler = r.route->handler;
    void* handler_ctx = r.route->ctx;
    if (!ctx_->pool.try_post([ex = r.ex, handler, handler_ctx] {
            // Plugin lines written from the handler (and from the source it may leave behind,
            // whose first piece is read right after it returns) carry the request's id.
            log::request_scope scope(ex->head().request_id);
            handler(handler_ctx, ex.get());
            ex->handler_returned();
        })) {
        r.ex.reset();  // gives back the principal's place and the spool
        r.streaming.leave();
        ctx_->metrics.refused_requests.counter({"queue_full"}).add(1);
        const bool whole = read_ == read_state::stopped;
        answer(503, "The server is busy. Retry later.", whole && r.keep_alive ? then::next_request : then::linger,
               {{"retry-after", "1"}}, "", "", "overloaded");
        return false;
    }
    return true;
}

// ---- write side --------------------------------------------------------------------------------

bool connection::send_interim() {
    // 25 bytes into an idle socket's send buffer: one non-blocking send, no write state. A send
    // buffer too full to take them means the client reads nothing; it is closed.
    ssize_t n;
    if (tls_) {
        std::size_t written = 0;
        const auto how = tls_->write(continue_response.data(), continue_response.size(), written);
        n = how == tls_session::outcome::done ? static_cast<ssize_t>(written) : -1;
    } else {
        n = ::send(socket_.native_handle(), continue_response.data(), continue_response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    if (n != static_cast<ssize_t>(continue_response.size())) {
        close();
        return false;
    }
    req_->bytes_out += continue_response.size();
    return true;
}

void connection::pump() {
    if (read_ == read_state::closed) {
        // The client is gone; the request ends once its handler has returned.
        if (req_ && (!req_->ex || req_->ex->handler_done())) req_.reset();
        return;
    }
    if (!req_ || !req_->ex) return;
    if (write_ == write_state::sending || write_ == write_state::sending_file) return;
    exchange& ex = *req_->ex;
    if (write_ == write_state::done) {
        if (ex.handler_done()) finish_request();
        return;
    }
    exchange::outbound item;
    if (ex.pop(item)) return write_item(std::move(item));
    if (ex.aborted()) {
        log::warn("http", peer() + ": response of request " + req_->request_id +
                              " could not be completed; connection closed");
        close();
    }
}

void connection::write_item(exchange::outbound item) {
    auto& r = *req_;
    if (read_ == read_state::streaming || read_ == read_state::held) {
        // The handler answered before its body was complete: it wants no more of it. The
        // connection stops reading, and closes after the answer (where the next request would
        // begin is somewhere in the unread rest).
        log::debug("http", peer() + ": answered before the end of the streaming body; closing after the answer");
        read_ = read_state::stopped;
        std::string().swap(r.chunk_scratch);
        r.decoded = {};
        r.spool->abandon();
        r.spool.reset();
        r.streaming.leave();
        r.keep_alive = false;
        r.rate = transfer_rate(ctx_->cfg.min_body_rate_bytes_per_s, milliseconds(ctx_->cfg.body_rate_window_ms));
    }
    switch (item.kind) {
    case exchange::outbound::complete: {
        r.status = item.status;
        response_head h;
        h.status = item.status;
        h.headers = &item.headers;
        h.framing = status_allows_body(item.status) ? response_framing::length : response_framing::none;
        h.length = item.data.size();
        h.keep_alive = r.keep_alive = r.keep_alive && !ctx_->stopping;
        h.http10 = r.http10;
        h.request_id = r.request_id;
        r.framing = h.framing;
        r.out_head = h.serialize();
        r.out_data = std::move(item.data);
        r.out_tail = {};
        return start_write(true);
    }
    case exchange::outbound::head:
    case exchange::outbound::file: {
        r.status = item.status;
        response_head h;
        h.status = item.status;
        h.headers = &item.headers;
        if (!status_allows_body(item.status))
            h.framing = response_framing::none;
        else if (item.kind == exchange::outbound::file)
            h.framing = response_framing::length, h.length = item.length;
        else if (item.content_length >= 0)
            h.framing = response_framing::length, h.length = static_cast<std::uint64_t>(item.content_length);
        else
            h.framing = unknown_length_framing(r.http10);
        h.keep_alive = r.keep_alive = r.keep_alive && !ctx_->stopping;
        h.http10 = r.http10;
        h.request_id = r.request_id;
        r.framing = h.framing;
        r.out_head = h.serialize();
        r.out_data.clear();
        r.out_tail = {};
        if (item.kind == exchange::outbound::file) {
            r.file = std::move(item.fd);
            r.file_offset = item.offset;
            r.file_left = item.length;
        }
        return start_write(false);
    }
    case exchange::outbound::chunk: {
        r.out_data = std::move(item.data);
        if (r.framing == response_framing::chunked) {
            char line[24];
            const int n = std::snprintf(line, sizeof line, "%zx\r\n", r.out_data.size());
            r.out_head.assign(line, static_cast<std::size_t>(n));
            r.out_tail = crlf;
        } else {
            r.out_head.clear();
            r.out_tail = {};
        }
        return start_write(false);
    }
    case exchange::outbound::end:
        if (r.framing == response_framing::chunked) {
            r.out_head.assign(last_chunk);
            r.out_data.clear();
            r.out_tail = {};
            return start_write(true);
        }
        write_ = write_state::done;
        return pump();
    }
}

void connection::start_write(bool last) {
    auto& r = *req_;
    write_ = write_state::sending;
    r.activity = r.rate_mark = clock_type::now();
    arm_timer();
    if (tls_) {
        // A small body goes into the head's TLS record instead of a record of its own.
        if (r.out_data.size() <= 16 * 1024) {
            r.out_head += r.out_data;
            r.out_head += r.out_tail;
            r.out_data.clear();
            r.out_tail = {};
        }
        r.out_sent = 0;
        write_last_ = last;
        return write_tls();
    }
    const std::array<asio::const_buffer, 3> buffers = {asio::buffer(r.out_head), asio::buffer(r.out_data),
                                                       asio::buffer(r.out_tail.data(), r.out_tail.size())};
    asio::async_write(socket_, buffers, [self = shared_from_this(), last](boost::system::error_code ec, std::size_t n) {
        self->guarded([&] { self->on_written(ec, n, last); });
    });
}

void connection::on_written(boost::system::error_code ec, std::size_t n, bool last) {
    if (write_ != write_state::sending) return;  // closed meanwhile
    if (ec) return peer_gone(ec);
    auto& r = *req_;
    const auto now = clock_type::now();
    r.bytes_out += n;
    r.rate.moved(n);
    if (r.ex && !r.rate.waited(now - r.rate_mark)) return cut_slow("response body");
    std::string().swap(r.out_data);
    write_ = last ? write_state::done : write_state::idle;

    if (!r.ex) {
        // A response the host composed itself.
        switch (r.after_answer) {
        case then::next_request: return finish_request();
        case then::drain:
            read_ = read_state::draining;
            r.activity = now;
            write_ = write_state::idle;
            arm_timer();
            if (!pending_.empty()) {
                std::string early;
                early.swap(pending_);
                consume(early);
            }
            return read_more();
        case then::linger: return linger_close();
        case then::close: return close();
        }
    }
    if (r.file && write_ == write_state::idle) return send_file();
    arm_timer();
    pump();
}

void connection::send_file() {
    auto& r = *req_;
    if (tls_) {
        // sendfile(2) cannot encrypt: the file goes through the session in pieces, each read
        // when the previous one is written (one piece in memory at a time).
        if (r.file_left == 0) {
            r.file.reset();
            write_ = write_state::done;
            arm_timer();
            return pump();
        }
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(r.file_left, tls_file_piece_bytes));
        r.out_head.clear();
        r.out_tail = {};
        r.out_data.resize(want);
        std::size_t got = 0;
        while (got < want) {
            const ssize_t n = ::pread(r.file.get(), r.out_data.data() + got, want - got,
                                      static_cast<off_t>(r.file_offset + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                log::error("http", peer() + ": the file of request " + r.request_id +
                                       " could not be read to its declared length; connection closed");
                return close();
            }
            got += static_cast<std::size_t>(n);
        }
        r.file_offset += want;
        r.file_left -= want;
        write_ = write_state::sending;
        r.activity = r.rate_mark = clock_type::now();
        arm_timer();
        r.out_sent = 0;
        write_last_ = false;
        return write_tls();
    }
    std::uint64_t sent = 0;
    while (r.file_left > 0) {
        off_t offset = static_cast<off_t>(r.file_offset);
        const ssize_t n = ::sendfile(socket_.native_handle(), r.file.get(), &offset,
                                     static_cast<std::size_t>(std::min<std::uint64_t>(r.file_left, file_piece_bytes)));
        if (n > 0) {
            r.file_offset += static_cast<std::uint64_t>(n);
            r.file_left -= static_cast<std::uint64_t>(n);
            r.bytes_out += static_cast<std::uint64_t>(n);
            r.rate.moved(static_cast<std::uint64_t>(n));
            sent += static_cast<std::uint64_t>(n);
            if (sent >= file_bytes_per_turn && r.file_left > 0) {
                // Let the thread's other connections have a turn.
                write_ = write_state::sending_file;
                r.activity = r.rate_mark = clock_type::now();
                asio::post(socket_.get_executor(), [self = shared_from_this()] {
                    self->guarded([&] {
                        if (self->write_ == write_state::sending_file) self->send_file();
                    });
                });
                return;
            }
            continue;
        }
        if (n == 0) {
            log::error("http", peer() + ": the file of request " + r.request_id +
                                   " ended before its declared length; connection closed");
            return close();
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            write_ = write_state::sending_file;
            r.activity = r.rate_mark = clock_type::now();
            arm_timer();
            socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](boost::system::error_code ec) {
                self->guarded([&] {
                    if (self->write_ != write_state::sending_file) return;
                    if (ec) return self->close();
                    auto& rs = *self->req_;
                    if (!rs.rate.waited(clock_type::now() - rs.rate_mark)) return self->cut_slow("response body");
                    self->send_file();
                });
            });
            return;
        }
        return close();  // EPIPE, ECONNRESET: the client is gone
    }
    r.file.reset();
    write_ = write_state::done;
    arm_timer();
    pump();
}

void connection::answer(int status, std::string_view message, then next, header_list extra, std::string_view type,
                        std::string_view param, std::string_view code) {
    const std::string t = type.empty() ? aq::http_error::default_type(status) : std::string(type);
    extra.emplace_back("Content-Type", "application/json");
    send_host_response(status, std::move(extra), aq::error_envelope(message, t, param, code), next);
}

void connection::send_host_response(int status, header_list headers, std::string body, then next) {
    auto& r = *req_;
    if (read_ != read_state::closed) read_ = read_state::stopped;
    if (ctx_->stopping && (next == then::next_request || next == then::drain)) next = then::linger;
    r.after_answer = next;
    r.status = status;
    response_head h;
    h.status = status;
    h.headers = &headers;
    h.framing = status_allows_body(status) ? response_framing::length : response_framing::none;
    h.length = body.size();
    h.keep_alive = next == then::next_request || next == then::drain;
    h.http10 = r.http10;
    h.request_id = r.request_id;
    r.out_head = h.serialize();
    r.out_data = std::move(body);
    r.out_tail = {};
    start_write(true);
}

// ---- end of a request ----------------------------------------------------------------------

void connection::finish_request() {
    auto& r = *req_;
    const bool reuse = r.ex ? r.keep_alive && !ctx_->stopping && r.framing != response_framing::until_close
                            : r.after_answer == then::next_request;
    if (reuse) return next_request();
    linger_close();
}

void connection::enter_idle() {
    req_.reset();  // the exchange, spool, ticket and in-flight mark go with it
    read_ = read_state::idle;
    write_ = write_state::idle;
    deadline_ = clock_type::now() + milliseconds(ctx_->cfg.idle_timeout_ms);
    arm_timer();
}

void connection::next_request() {
    enter_idle();
    if (!pending_.empty()) {
        std::string early;
        early.swap(pending_);  // leaves pending_ without a buffer
        consume(early);
    }
    read_more();
}

void connection::linger_close() {
    req_.reset();
    if (tls_) tls_->close_notify();
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    std::string().swap(pending_);
    read_ = read_state::lingering;
    write_ = write_state::idle;
    deadline_ = clock_type::now() + linger_time;
    arm_timer();
    read_more();
}

void connection::reset() {
    // A client that does not read holds our unsent bytes in the kernel's send buffer; a plain
    // close would keep them (and the socket) until the client has read them all. SO_LINGER 0
    // turns the close into a reset that drops them at once.
    boost::system::error_code ec;
    socket_.set_option(asio::socket_base::linger(true, 0), ec);
    close();
}

void connection::close() {
    if (read_ == read_state::closed) return;
    read_ = read_state::closed;
    write_ = write_state::closed;
    boost::system::error_code ec;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    slot_.release();
    std::string().swap(pending_);
    { std::lock_guard lock(ctx_->mutex); }  // so that a waiter cannot miss the notification below
    if (req_) {
        // A handler still running keeps its request (and this connection) until it returns:
        // its blocked calls fail with AQ_ERR_DISCONNECTED now (a read of a streaming body too),
        // and pump() lets go afterwards.
        if (req_->spool) req_->spool->abandon();
        if (req_->ex) req_->ex->disconnect();
        if (!req_->ex || req_->ex->handler_done()) req_.reset();
    }
    ctx_->changed.notify_all();
}

// ---- time --------------------------------------------------------------------------------------

connection::time_point connection::next_deadline() const {
    const auto& cfg = ctx_->cfg;
    const auto body_timeout = milliseconds(cfg.body_timeout_ms);
    if (write_ == write_state::sending || write_ == write_state::sending_file) {
        const auto& r = *req_;
        auto d = r.activity + body_timeout;
        if (r.ex && r.rate.enabled()) d = std::min(d, r.rate_mark + r.rate.wait_left());
        return d;
    }
    switch (read_) {
    case read_state::handshake:
    case read_state::fresh:
    case read_state::idle:
    case read_state::head:
    case read_state::lingering:
        return deadline_;
    case read_state::body:
    case read_state::streaming: {
        const auto& r = *req_;
        auto d = r.activity + body_timeout;
        if (r.rate.enabled()) d = std::min(d, r.rate_mark + r.rate.wait_left());
        return d;
    }
    case read_state::draining:
        return req_->activity + body_timeout;
    default:
        return never;  // the handler's turn: its time is not limited here
    }
}

// The wait outstanding is moved only to an earlier deadline. One that ends sooner than needed
// is enough: on_timer finds nothing due and waits again for the deadline of that moment. Moving
// it on every change cost a cancel (an aborted handler to run) and two timer-queue updates under
// the reactor's mutex, twice a request: a fifth of the host's CPU on a small keep-alive request.
// Now a keep-alive connection moves its wait about once per header timeout, not per request.
void connection::arm_timer() {
    const auto d = next_deadline();
    if (d == never || timer_expiry_ <= d) return;
    timer_expiry_ = d;
    timer_.expires_at(d);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        self->guarded([&] { self->on_timer(ec); });
    });
}

void connection::on_timer(boost::system::error_code ec) {
    // Aborted: arm_timer moved the wait (the new one is outstanding), or close() ended it.
    if (ec == asio::error::operation_aborted) return;
    timer_expiry_ = never;
    if (read_ == read_state::closed) return;
    const auto now = clock_type::now();
    // The deadline may have moved since this wait began (a read, a finished write): only what
    // is really due counts.
    if (now < next_deadline()) return arm_timer();
    const auto body_timeout = milliseconds(ctx_->cfg.body_timeout_ms);

    if (write_ == write_state::sending || write_ == write_state::sending_file) {
        auto& r = *req_;
        if (r.ex && r.rate.enabled()) {
            const bool fast_enough = r.rate.waited(now - r.rate_mark);
            r.rate_mark = now;
            if (!fast_enough) return cut_slow("response body");
        }
        if (now >= r.activity + body_timeout) {
            log::debug("http", peer() + ": response write timed out");
            return reset();
        }
        return arm_timer();
    }
    switch (read_) {
    case read_state::handshake:
    case read_state::fresh:
    case read_state::idle:
    case read_state::head:
    case read_state::lingering:
        return close();  // handshake, header, idle or linger time is up
    case read_state::body: {
        auto& r = *req_;
        if (r.rate.enabled()) {
            const bool fast_enough = r.rate.waited(now - r.rate_mark);
            r.rate_mark = now;
            if (!fast_enough) return cut_slow("request body");
        }
        if (now >= r.activity + body_timeout)
            return answer(408, "The request body stopped arriving.", then::close);
        return arm_timer();
    }
    case read_state::streaming: {
        // As for a body, but its handler owns the answer: the connection closes and the handler
        // reads a disconnect.
        auto& r = *req_;
        if (r.rate.enabled()) {
            const bool fast_enough = r.rate.waited(now - r.rate_mark);
            r.rate_mark = now;
            if (!fast_enough) return cut_slow("request body");
        }
        if (now >= r.activity + body_timeout) {
            log::warn("http", peer() + ": the streaming request body stopped arriving; connection closed (request " +
                                  r.request_id + ")");
            return close();
        }
        return arm_timer();
    }
    case read_state::draining:
        return close();
    default:
        return;
    }
}

void connection::cut_slow(const char* what) {
    auto& r = *req_;
    log::warn("http", peer() + ": " + what + " slower than " + std::to_string(r.rate.min_bytes_per_s()) +
                          " bytes/s (" + std::to_string(r.rate.failed_window_bytes()) + " bytes in " +
                          std::to_string(r.rate.window().count()) + " ms); connection closed (request " +
                          r.request_id + ")");
    if (read_ == read_state::body) return answer(408, "The request body arrived too slowly.", then::close);
    reset();
}

}  // namespace aqd
