#include "http_server.hpp"

#include "ascii.hpp"
#include "auth.hpp"
#include "config.hpp"
#include "exchange.hpp"
#include "log.hpp"
#include "router.hpp"
#include "worker_pool.hpp"

#include <aqueduct/plugin.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace aqd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class session;

// How much of a body or a response may wait in memory per request. 1 MiB each keeps one upload
// at a few MiB while letting a database write a whole chunk per call.
constexpr std::size_t body_queue_bytes = 1 << 20;
constexpr std::size_t response_queue_bytes = 1 << 20;
constexpr std::size_t read_piece_bytes = 64 * 1024;
// How long a graceful close keeps reading (and discarding) after the response was sent.
constexpr auto linger_time = std::chrono::seconds(2);

}  // namespace

struct http_server::state {
    const config& cfg;
    const router& routes;
    const authenticator& auth;
    worker_pool& pool;
    std::function<bool()> ready;

    asio::io_context ioc;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::optional<tcp::acceptor> acceptor;
    std::vector<std::thread> threads;
    std::atomic<bool> stopping{false};
    bool stopped = false;

    std::mutex mutex;
    std::condition_variable idle;
    std::size_t in_flight = 0;
    std::set<std::weak_ptr<session>, std::owner_less<std::weak_ptr<session>>> sessions;

    state(const config& c, const router& r, const authenticator& a, worker_pool& p, std::function<bool()> rd)
        : cfg(c), routes(r), auth(a), pool(p), ready(std::move(rd)), ioc(static_cast<int>(c.io_threads ? c.io_threads : 1)) {}

    void request_started() {
        std::lock_guard lock(mutex);
        ++in_flight;
    }
    void request_finished() {
        {
            std::lock_guard lock(mutex);
            --in_flight;
        }
        idle.notify_all();
    }
};

namespace {


// One connection. All its members are touched only on its strand.
class session : public std::enable_shared_from_this<session>, public exchange::owner {
public:
    session(tcp::socket socket, std::shared_ptr<http_server::state> srv)
        : stream_(std::move(socket)), srv_(std::move(srv)) {}


    void start() {
        {
            std::lock_guard lock(srv_->mutex);
            srv_->sessions.insert(weak_from_this());
        }
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
    }

    // Called by the server on shutdown: idle connections close now, busy ones after their
    // response (keep-alive is off from now on).
    void shutdown_if_idle() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            if (!self->ex_ && !self->writing_) self->close();
        });
    }

    // Called by the server when the drain deadline passed.
    void abort() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            self->broken_ = true;
            self->close();
        });
    }

    void wake() override {
        asio::post(stream_.get_executor(), [self = shared_from_this()] { self->pump(); });
    }

private:
    // ---- reading a request ---------------------------------------------------------------

    void read_header() {
        if (srv_->stopping) return close();
        reset_request();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(srv_->cfg.max_header_bytes));
        // Limits are per route and enforced here, not by Beast, so the client gets a 413.
        parser_->body_limit(boost::none);
        stream_.expires_after(std::chrono::milliseconds(first_ ? srv_->cfg.header_timeout_ms : srv_->cfg.idle_timeout_ms));
        http::async_read_header(stream_, buffer_, *parser_,
                                beast::bind_front_handler(&session::on_header, shared_from_this()));
    }

    void on_header(beast::error_code ec, std::size_t) {
        first_ = false;
        // Every answer carries an id, including the 400 for a request that never parsed.
        request_id_ = aq::random_id("req_", 24);
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
            return close();
        }
        if (ec == http::error::header_limit) {
            return answer_early(431, "Request header fields are too large.", {}, true);
        }
        if (ec) {
            return answer_early(400, "Malformed HTTP request: " + ec.message() + ".", {}, true);
        }
        // A timer left over from the header read must not cut a long handler short.
        stream_.expires_never();
        handle_head();
    }

    void handle_head() {
        auto& req = parser_->get();
        std::string_view target(req.target().data(), req.target().size());
        if (target.empty() || target.front() != '/') {
            return answer_early(400, "Malformed HTTP request: the request target must start with '/'.", {}, true);
        }
        auto qpos = target.find('?');
        path_ = std::string(target.substr(0, qpos));
        query_ = qpos == std::string_view::npos ? std::string() : std::string(target.substr(qpos + 1));
        keep_alive_ = req.keep_alive();
        // The body's framing as the parser reads it: the message's chunked() looks at the first
        // Transfer-Encoding field only, so with the codings split over two fields the chunked
        // body would be taken for the next request (found by tests/fuzz).
        chunked_ = parser_->chunked();
        const auto length = parser_->content_length();
        // Past INT64_MAX the length below would turn negative: a request without a body, its body
        // parsed as the next request (found by tests/fuzz). No endpoint takes that much anyway.
        if (length && *length > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return answer_early(413, "Request body of " + std::to_string(*length) + " bytes is too large.", {}, true);
        }
        content_length_ = length ? static_cast<std::int64_t>(*length) : (chunked_ ? -1 : 0);
        has_body_ = chunked_ || content_length_ > 0;
        body_done_ = !has_body_;
        body_received_ = 0;
        std::string_view method(req.method_string().data(), req.method_string().size());

        if (path_ == "/healthz" || path_ == "/v1/healthz") {
            if (method != "GET")
                return answer_early(405, "Method " + std::string(method) + " is not allowed on " + path_ + ".",
                                    {{"Allow", "GET"}});
            bool ok = srv_->ready() && !srv_->stopping;
            return send_complete(ok ? 200 : 503, {{"Content-Type", "application/json"}},
                                 ok ? R"({"status":"ok"})" : R"({"status":"unavailable"})", true);
        }

        auto found = srv_->routes.find(method, path_);
        if (found.result == router::outcome::not_found) {
            return answer_early(404, "Invalid URL (" + std::string(method) + " " + path_ + ").");
        }
        if (found.result == router::outcome::method_not_allowed) {
            return answer_early(405, "Method " + std::string(method) + " is not allowed on " + path_ + ".",
                                {{"Allow", found.allow}});
        }
        const route_target& route = *found.target;

        const principal* who = nullptr;
        if (!(route.flags & AQ_ROUTE_PUBLIC)) {
            auto auth = req.find(http::field::authorization);
            if (auth == req.end()) {
                return answer_early(401,
                                    "You didn't provide an API key. You need to provide your API key in an "
                                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                                    {{"WWW-Authenticate", "Bearer"}}, false, "invalid_request_error", "", "");
            }
            who = srv_->auth.authenticate(std::string_view(auth->value().data(), auth->value().size()));
            if (!who) {
                return answer_early(401, "Incorrect API key provided.", {{"WWW-Authenticate", "Bearer"}}, false,
                                    "invalid_request_error", "", "invalid_api_key");
            }
        }

        max_body_ = route.max_body_bytes;
        if (has_body_ && (max_body_ == 0 || (content_length_ > 0 && static_cast<std::uint64_t>(content_length_) > max_body_))) {
            if (max_body_ > 0 && route.limit_status != 0) {
                return answer_early(route.limit_status, route.limit_message, {}, false, "", route.limit_param);
            }
            return answer_early(413, max_body_ == 0 ? "This endpoint does not take a request body."
                                                    : "Request body of " + std::to_string(content_length_) +
                                                          " bytes exceeds the limit of " + std::to_string(max_body_) +
                                                          " bytes for this endpoint.");
        }

        exchange::request_head head;
        head.method = std::string(method);
        head.path = path_;
        head.query = query_;
        head.request_id = request_id_;
        head.who = who;
        head.content_length = content_length_;
        head.max_body_bytes = max_body_;
        head.params = std::move(found.params);
        for (auto& field : req)
            head.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));

        ex_ = std::make_shared<exchange>(std::move(head), shared_from_this(), body_queue_bytes, response_queue_bytes);
        if (body_done_) ex_->finish_body();
        srv_->request_started();

        // Only a request that will be handled gets "100 Continue"; refusals above answered with
        // the final status instead, so the client never sends a body nobody wants.
        auto expect = req.find(http::field::expect);
        if (has_body_ && expect != req.end() && iequals(expect->value(), "100-continue")) {
            continue_pending_ = true;
        }

        srv_->pool.post([ex = ex_, handler = route.handler, ctx = route.ctx] {
            handler(ctx, static_cast<aq_request*>(ex.get()));
            ex->handler_returned();
        });
        pump();
    }

    // ---- moving data while a handler runs ------------------------------------------------

    void pump() {
        if (!ex_) return;
        if (!writing_ && !broken_) start_write();
        if (!reading_ && !broken_ && !body_done_ && !body_failed_ && !continue_pending_ && ex_->wants_body()) read_body_piece();
        maybe_finish();
    }

    void read_body_piece() {
        reading_ = true;
        // Beast sizes each socket read by the buffer's spare capacity (512 bytes at least): without
        // room, a large body arrives 512 bytes per recvmsg and the I/O thread drowns in syscalls.
        // Grown only for bodies, so idle keep-alive connections stay small.
        if (buffer_.capacity() < read_piece_bytes) buffer_.reserve(read_piece_bytes);
        auto& body = parser_->get().body();
        body.data = piece_.data();
        body.size = piece_.size();
        stream_.expires_after(std::chrono::milliseconds(srv_->cfg.body_timeout_ms));
        http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&session::on_body_piece, shared_from_this()));
    }

    void on_body_piece(beast::error_code ec, std::size_t) {
        reading_ = false;
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            // Timeout, reset, or broken chunk framing: the body can never be completed.
            broken_ = true;
            if (ex_) ex_->disconnect();
            return pump_or_close();
        }
        std::size_t got = piece_.size() - parser_->get().body().size;
        if (got && ex_) {
            body_received_ += got;
            if (body_received_ > max_body_) {
                body_failed_ = true;
                close_after_ = true;
                ex_->fail_body(AQ_ERR_TOO_LARGE);
            } else {
                ex_->push_body(std::string_view(piece_.data(), got));
            }
        }
        if (parser_->is_done()) {
            body_done_ = true;
            if (ex_) ex_->finish_body();
        }
        pump();
    }

    void pump_or_close() {
        if (ex_) return pump();
        close();
    }

    // ---- writing a response ----------------------------------------------------------------

    void start_write() {
        if (continue_pending_) {
            continue_pending_ = false;
            writing_ = true;
            auto res = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
            stream_.expires_after(std::chrono::milliseconds(srv_->cfg.body_timeout_ms));
            http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                self->on_write(false, ec);
            });
            return;
        }
        exchange::outbound item;
        if (!ex_->pop(item)) return;
        writing_ = true;
        stream_.expires_after(std::chrono::milliseconds(srv_->cfg.body_timeout_ms));
        switch (item.kind) {
        case exchange::outbound::complete: {
            auto res = make_complete(item.status, item.headers, std::move(item.data), response_keep_alive());
            http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                self->on_write(true, ec);
            });
            return;
        }
        case exchange::outbound::head: {
            streamed_.emplace(static_cast<http::status>(item.status), 11);
            for (auto& [name, value] : item.headers) streamed_->set(name, value);
            streamed_->set("x-request-id", request_id_);
            streamed_->set(http::field::server, "aqueduct");
            if (item.content_length >= 0)
                streamed_->content_length(static_cast<std::uint64_t>(item.content_length));
            else
                streamed_->chunked(true);
            streamed_->keep_alive(response_keep_alive());
            streamed_->body().data = nullptr;
            streamed_->body().more = true;
            serializer_.emplace(*streamed_);
            http::async_write_header(stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                self->on_write(false, ec);
            });
            return;
        }
        case exchange::outbound::chunk:
            chunk_ = std::move(item.data);
            streamed_->body().data = chunk_.data();
            streamed_->body().size = chunk_.size();
            streamed_->body().more = true;
            http::async_write(stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                self->on_write(false, ec);
            });
            return;
        case exchange::outbound::end:
            streamed_->body().data = nullptr;
            streamed_->body().size = 0;
            streamed_->body().more = false;
            http::async_write(stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                self->on_write(true, ec);
            });
            return;
        }
    }

    void on_write(bool last, beast::error_code ec) {
        writing_ = false;
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            broken_ = true;
            if (ex_) ex_->disconnect();
            return pump_or_close();
        }
        if (last) response_done_ = true;
        pump();
    }

    // Keep the connection only if the rest of the body can be consumed cheaply.
    bool response_keep_alive() {
        if (!keep_alive_ || close_after_ || srv_->stopping) return false;
        if (body_done_ || !ex_ || !ex_->handler_done()) return true;
        return drainable();
    }

    bool drainable() const {
        return !chunked_ && content_length_ >= 0 &&
               static_cast<std::uint64_t>(content_length_) - body_received_ <= srv_->cfg.max_drain_bytes;
    }

    std::shared_ptr<http::response<http::string_body>> make_complete(int status, const exchange::header_list& headers,
                                                                     std::string body, bool keep_alive) {
        auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), 11);
        for (auto& [name, value] : headers) res->set(name, value);
        res->set("x-request-id", request_id_);
        res->set(http::field::server, "aqueduct");
        res->body() = std::move(body);
        res->keep_alive(keep_alive);
        res->prepare_payload();
        return res;
    }

    // ---- finishing a request -----------------------------------------------------------------

    void maybe_finish() {
        if (!ex_ || !ex_->handler_done() || writing_ || reading_) return;
        if (!broken_ && !response_done_) {
            if (ex_->aborted()) broken_ = true;  // streamed response left unfinished
            else return;                          // queued pieces still to write
        }
        ex_.reset();
        srv_->request_finished();
        if (broken_) return close();
        bool reuse = keep_alive_ && !close_after_ && !srv_->stopping;
        if (!body_done_) {
            if (reuse && drainable()) return drain_body();
            return linger_close();
        }
        if (reuse) return read_header();
        linger_close();
    }

    // ---- answers the host gives itself ---------------------------------------------------

    void answer_early(int status, std::string message, exchange::header_list extra = {}, bool fatal = false,
                      std::string type = {}, std::string param = {}, std::string code = {}) {
        if (type.empty()) type = aq::http_error::default_type(status);
        extra.emplace_back("Content-Type", "application/json");
        send_complete(status, extra, aq::error_envelope(message, type, param, code), !fatal);
    }

    // Writes a response the host composed itself, then continues with the connection: next
    // request, drain of an unread body, or close.
    void send_complete(int status, const exchange::header_list& headers, std::string body, bool may_continue) {
        if (!may_continue) parser_.reset();
        bool reuse = may_continue && keep_alive_ && !srv_->stopping && (body_done_ || drainable());
        if (!reuse) close_after_ = true;
        auto res = make_complete(status, headers, std::move(body), reuse);
        writing_ = true;
        stream_.expires_after(std::chrono::milliseconds(srv_->cfg.body_timeout_ms));
        http::async_write(stream_, *res, [self = shared_from_this(), res, reuse](beast::error_code ec, std::size_t) {
            self->writing_ = false;
            if (ec) return self->close();
            if (!reuse) return self->linger_close();
            if (!self->body_done_) return self->drain_body();
            self->read_header();
        });
    }

    // Reads and discards the rest of a body nobody wants, then serves the next request.
    void drain_body() {
        if (body_done_) return read_header();
        if (!drainable()) return linger_close();
        reading_ = true;
        auto& body = parser_->get().body();
        body.data = piece_.data();
        body.size = piece_.size();
        stream_.expires_after(std::chrono::milliseconds(srv_->cfg.body_timeout_ms));
        http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->reading_ = false;
            if (ec == http::error::need_buffer) ec = {};
            if (ec) return self->close();
            self->body_received_ += self->piece_.size() - self->parser_->get().body().size;
            if (self->parser_->is_done()) {
                self->body_done_ = true;
                return self->keep_alive_ && !self->srv_->stopping ? self->read_header() : self->linger_close();
            }
            self->drain_body();
        });
    }

    // Graceful close: stop sending, then read and discard for a moment, so a client that is
    // still sending gets our response instead of a reset.
    void linger_close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) return close();
        linger_until_ = std::chrono::steady_clock::now() + linger_time;
        linger_read();
    }

    void linger_read() {
        auto left = linger_until_ - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) return close();
        stream_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left));
        stream_.async_read_some(asio::buffer(piece_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->close();
            self->linger_read();
        });
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        broken_ = true;
        if (ex_) ex_->disconnect();  // the handler unwinds; maybe_finish() releases the exchange
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
        {
            std::lock_guard lock(srv_->mutex);
            srv_->sessions.erase(weak_from_this());
        }
        srv_->idle.notify_all();
    }

    beast::tcp_stream stream_;
    std::shared_ptr<http_server::state> srv_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::buffer_body>> parser_;
    std::array<char, read_piece_bytes> piece_{};

    // The current request.
    std::shared_ptr<exchange> ex_;
    std::string path_, query_, request_id_;
    std::int64_t content_length_ = 0;
    std::uint64_t max_body_ = 0;
    std::uint64_t body_received_ = 0;
    bool first_ = true;
    bool keep_alive_ = false;
    bool chunked_ = false;
    bool has_body_ = false;
    bool body_done_ = true;
    bool body_failed_ = false;
    bool continue_pending_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool response_done_ = false;
    bool close_after_ = false;
    bool broken_ = false;
    bool closed_ = false;
    std::chrono::steady_clock::time_point linger_until_;

    // A streamed response.
    std::optional<http::response<http::buffer_body>> streamed_;
    std::optional<http::response_serializer<http::buffer_body>> serializer_;
    std::string chunk_;

    // Per-request state is reset before a new header is read.
    void reset_request() {
        response_done_ = false;
        close_after_ = false;
        body_failed_ = false;
        continue_pending_ = false;
        streamed_.reset();
        serializer_.reset();
    }
};

void accept(std::shared_ptr<http_server::state> srv) {
    srv->acceptor->async_accept(asio::make_strand(srv->ioc), [srv](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || srv->stopping) return;
        if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<session>(std::move(socket), srv)->start();
        } else {
            log::warn("http", "accept failed: " + ec.message());
        }
        accept(srv);
    });
}

}  // namespace

http_server::http_server(const config& cfg, const router& routes, const authenticator& auth, worker_pool& pool,
                         std::function<bool()> ready)
    : state_(std::make_shared<state>(cfg, routes, auth, pool, std::move(ready))) {}

http_server::~http_server() {
    stop();
    // Handlers still queued in the stopped io_context (the accept loop, closed sessions, wakes
    // from workers) hold the state that owns the io_context: run them out so that cycle breaks
    // and the state is freed (LeakSanitizer found it). The sockets are closed: they only unwind.
    auto& s = *state_;
    s.acceptor.reset();
    s.ioc.restart();
    s.ioc.poll();
}

std::string http_server::start() {
    auto& s = *state_;
    auto address = asio::ip::make_address(s.cfg.listen_address);
    tcp::endpoint endpoint(address, s.cfg.listen_port);
    s.acceptor.emplace(s.ioc);
    s.acceptor->open(endpoint.protocol());
    s.acceptor->set_option(asio::socket_base::reuse_address(true));
    s.acceptor->bind(endpoint);
    s.acceptor->listen(asio::socket_base::max_listen_connections);
    auto bound = s.acceptor->local_endpoint();
    s.work.emplace(s.ioc.get_executor());
    accept(state_);
    unsigned n = s.cfg.io_threads ? s.cfg.io_threads : 1;
    for (unsigned i = 0; i < n; ++i) s.threads.emplace_back([this] { state_->ioc.run(); });
    std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
    return host + ":" + std::to_string(bound.port());
}

void http_server::stop_accepting() {
    auto& s = *state_;
    if (s.stopping.exchange(true)) return;
    asio::post(s.ioc, [srv = state_] {
        beast::error_code ec;
        if (srv->acceptor) srv->acceptor->close(ec);
    });
    std::vector<std::shared_ptr<session>> live;
    {
        std::lock_guard lock(s.mutex);
        for (auto& w : s.sessions)
            if (auto p = w.lock()) live.push_back(std::move(p));
    }
    for (auto& p : live) p->shutdown_if_idle();
}

std::size_t http_server::drain(std::chrono::milliseconds timeout) {
    auto& s = *state_;
    std::unique_lock lock(s.mutex);
    s.idle.wait_for(lock, timeout, [&] { return s.in_flight == 0; });
    return s.in_flight;
}

void http_server::stop() {
    auto& s = *state_;
    if (s.stopped) return;
    s.stopped = true;
    stop_accepting();
    std::vector<std::shared_ptr<session>> live;
    {
        std::lock_guard lock(s.mutex);
        for (auto& w : s.sessions)
            if (auto p = w.lock()) live.push_back(std::move(p));
    }
    for (auto& p : live) p->abort();
    live.clear();
    // Let the aborts run (they close the sockets) before the I/O threads stop; otherwise the
    // clients stay connected until the process exits.
    {
        std::unique_lock lock(s.mutex);
        s.idle.wait_for(lock, std::chrono::seconds(2), [&] { return s.sessions.empty(); });
    }
    s.work.reset();
    s.ioc.stop();
    for (auto& t : s.threads)
        if (t.joinable()) t.join();
    s.threads.clear();
}

}  // namespace aqd
