#include "transport.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/err.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <optional>
#include <vector>

namespace aq::s3 {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

std::string http_response::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (n == name) return v;
    return {};
}

namespace {

// One read or write of a body moves at most this much; it is also each connection's buffer.
constexpr std::size_t io_block = 256 * 1024;

struct connection {
    net::io_context ioc{1};  // run by the thread that holds the connection; declared first, destroyed last
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    // Bytes read from the socket before the parser takes them. Beast reads at most
    // capacity - size (at least 512) bytes at a time, so a buffer that only ever held a header
    // would read a large body ~500 bytes per system call: it starts at 64 KiB, Beast's own cap.
    beast::flat_buffer buffer;
    std::unique_ptr<char[]> block{new char[io_block]};
    clock_type::time_point last_used;

    connection() { buffer.reserve(64 * 1024); }

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

// Runs `task` on the connection's io_context, on this thread, to its end.
template <class T>
T run_on(net::io_context& ioc, net::awaitable<T> task) {
    std::exception_ptr failure;
    std::optional<T> result;
    net::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T r) {
        failure = e;
        if (!e) result.emplace(std::move(r));
    });
    ioc.restart();
    ioc.run();
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
}

void run_on(net::io_context& ioc, net::awaitable<void> task) {
    std::exception_ptr failure;
    net::co_spawn(ioc, std::move(task), [&](std::exception_ptr e) { failure = e; });
    ioc.restart();
    ioc.run();
    if (failure) std::rethrow_exception(failure);
}

// Whether an idle connection is still usable: nothing to read (a readable idle socket means the
// server closed it, or sent something unasked) and no error.
bool still_open(connection& c) {
    pollfd p{};
    p.fd = c.lowest().socket().native_handle();
    p.events = POLLIN;
    return ::poll(&p, 1, 0) == 0;
}

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    net::ip::make_address(host, ec);
    return !ec;
}

// Where an exchange is, for classifying a failure.
struct progress {
    transport_failure::stage where = transport_failure::stage::send;
    bool answered = false;
};

}  // namespace

struct transport::impl {
    transport_config cfg;
    ssl::context tls_ctx{ssl::context::tls_client};
    std::mutex mutex;
    std::vector<std::unique_ptr<connection>> idle;
    std::atomic<std::uint64_t> opened{0};

    explicit impl(transport_config c) : cfg(std::move(c)) {
        if (cfg.target.tls) {
            tls_ctx.set_default_verify_paths();
            if (!cfg.ca_file.empty()) {
                boost::system::error_code ec;
                tls_ctx.load_verify_file(cfg.ca_file, ec);
                if (ec) throw std::runtime_error("cannot load the CA file " + cfg.ca_file + ": " + ec.message());
            }
            tls_ctx.set_verify_mode(ssl::verify_peer);
        }
    }

    std::unique_ptr<connection> take_idle() {
        std::vector<std::unique_ptr<connection>> stale;  // closed outside the lock
        std::lock_guard lock(mutex);
        auto now = clock_type::now();
        while (!idle.empty()) {
            auto c = std::move(idle.back());
            idle.pop_back();
            if (now - c->last_used <= cfg.idle_keepalive && still_open(*c)) return c;
            stale.push_back(std::move(c));
        }
        return nullptr;
    }

    void give_back(std::unique_ptr<connection> c) {
        c->last_used = clock_type::now();
        std::lock_guard lock(mutex);
        if (idle.size() < cfg.max_idle_connections) idle.push_back(std::move(c));
    }

    net::awaitable<void> connect(connection& c, tcp::resolver::results_type addresses, progress& p) {
        p.where = transport_failure::stage::connect;
        c.lowest().expires_after(cfg.connect_timeout);
        co_await c.lowest().async_connect(addresses, net::use_awaitable);
        c.lowest().socket().set_option(tcp::no_delay(true));
        if (c.tls) {
            p.where = transport_failure::stage::tls;
            c.lowest().expires_after(cfg.connect_timeout);
            co_await c.tls->async_handshake(ssl::stream_base::client, net::use_awaitable);
        }
        c.lowest().expires_never();
    }

    std::unique_ptr<connection> open(progress& p) {
        auto c = std::make_unique<connection>();
        p.where = transport_failure::stage::connect;
        // A synchronous resolve: an asynchronous one would start a resolver thread per io_context.
        tcp::resolver resolver(c->ioc);
        auto addresses = resolver.resolve(cfg.target.host, cfg.target.port);
        if (cfg.target.tls) {
            c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(c->ioc, tls_ctx);
            // SNI carries host names only (RFC 6066); the certificate check covers IPs too.
            if (!is_ip_literal(cfg.target.host) &&
                !SSL_set_tlsext_host_name(c->tls->native_handle(), cfg.target.host.c_str()))
                throw std::runtime_error("cannot set the TLS server name");
            c->tls->set_verify_callback(ssl::host_name_verification(cfg.target.host));
        } else {
            c->plain = std::make_unique<beast::tcp_stream>(c->ioc);
        }
        run_on(c->ioc, connect(*c, std::move(addresses), p));
        ++opened;
        return c;
    }

    template <class Stream>
    net::awaitable<void> write_bytes(connection& c, Stream& stream, const char* data, std::size_t n) {
        c.lowest().expires_after(cfg.io_timeout);
        co_await net::async_write(stream, net::buffer(data, n), net::use_awaitable);
    }

    template <class Stream>
    net::awaitable<void> send_body(connection& c, Stream& stream, const http_request& req) {
        if (!req.pull) {
            // In slices, so the timeout bounds a stall, not the whole body.
            for (std::size_t off = 0; off < req.body.size(); off += io_block)
                co_await write_bytes(c, stream, req.body.data() + off, std::min(io_block, req.body.size() - off));
            co_return;
        }
        if (req.chunked) {
            // RFC 9112 section 7.1: each piece as "<size in hex>\r\n<bytes>\r\n", then "0\r\n\r\n".
            // A body that ends without the last chunk (the caller failed, the process died) is,
            // to the server, a request that broke off: nothing is stored.
            for (;;) {
                std::size_t got = req.pull(c.block.get(), io_block);
                if (got > io_block) throw std::runtime_error("the request body source gave more than it was asked");
                if (got == 0) break;
                char size_line[24];
                int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", got);
                std::array<net::const_buffer, 3> chunk{net::buffer(size_line, static_cast<std::size_t>(n)),
                                                       net::buffer(c.block.get(), got), net::buffer("\r\n", 2)};
                c.lowest().expires_after(cfg.io_timeout);
                co_await net::async_write(stream, chunk, net::use_awaitable);
            }
            co_await write_bytes(c, stream, "0\r\n\r\n", 5);
            co_return;
        }
        std::uint64_t remaining = req.content_length;
        while (remaining > 0) {
            std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(io_block, remaining));
            std::size_t got = req.pull(c.block.get(), want);
            if (got == 0 || got > want)
                throw std::runtime_error("the request body source ended after " +
                                         std::to_string(req.content_length - remaining) + " of " +
                                         std::to_string(req.content_length) + " bytes");
            co_await write_bytes(c, stream, c.block.get(), got);
            remaining -= got;
        }
    }

    // One request and its response on an open connection. Sets `reusable` when the connection
    // can serve another request.
    template <class Stream>
    net::awaitable<http_response> exchange_on(connection& c, Stream& stream, const http_request& req,
                                              const body_receiver* receiver,
                                              std::size_t max_collect, progress& p, bool& reusable) {
        http::request<http::empty_body> head{http::string_to_verb(req.method), req.target, 11};
        for (const auto& [name, value] : req.headers) head.insert(name, value);
        if (req.has_body && req.chunked)
            head.set(http::field::transfer_encoding, "chunked");
        else if (req.has_body)
            head.content_length(req.content_length);
        bool expect = req.expect_continue && req.has_body && (req.chunked || req.content_length > 0);
        if (expect) head.set(http::field::expect, "100-continue");

        p.where = transport_failure::stage::send;
        http::request_serializer<http::empty_body> serializer{head};
        c.lowest().expires_after(cfg.io_timeout);
        co_await http::async_write_header(stream, serializer, net::use_awaitable);

        std::optional<http::response_parser<http::buffer_body>> parser;
        auto fresh_parser = [&] {
            parser.emplace();
            parser->body_limit(boost::none);  // a download is as large as the object; limits are ours
            parser->header_limit(64 * 1024);
            if (req.head) parser->skip(true);
        };
        auto read_header = [&]() -> net::awaitable<void> {
            p.where = transport_failure::stage::receive;
            c.lowest().expires_after(cfg.io_timeout);
            co_await http::async_read_header(stream, c.buffer, *parser, net::use_awaitable);
            p.answered = true;
        };

        bool body_withheld = false;  // a final answer came instead of 100 Continue
        if (expect) {
            for (;;) {
                fresh_parser();
                co_await read_header();
                int s = parser->get().result_int();
                if (s == 100) {
                    fresh_parser();
                    p.where = transport_failure::stage::send;
                    co_await send_body(c, stream, req);
                    break;
                }
                if (s < 100 || s >= 200) {
                    body_withheld = true;
                    break;
                }
                // Another interim answer (102 Processing): keep waiting.
            }
        } else {
            if (req.has_body) co_await send_body(c, stream, req);
            fresh_parser();
        }
        if (!parser->is_header_done()) co_await read_header();
        while (parser->get().result_int() / 100 == 1) {
            fresh_parser();  // an interim answer after the body: skip it
            co_await read_header();
        }

        http_response resp;
        auto& msg = parser->get();
        resp.status = msg.result_int();
        for (const auto& field : msg) {
            std::string name(field.name_string());
            for (char& ch : name)
                if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            resp.headers.emplace_back(std::move(name), std::string(field.value()));
        }
        bool to_sink = receiver && resp.status / 100 == 2;
        if (to_sink && receiver->head) receiver->head(resp.status, resp.headers);
        while (!parser->is_done()) {
            auto& body = parser->get().body();
            body.data = c.block.get();
            body.size = io_block;
            boost::system::error_code ec;
            c.lowest().expires_after(cfg.io_timeout);
            co_await http::async_read(stream, c.buffer, *parser, net::redirect_error(net::use_awaitable, ec));
            if (ec == http::error::need_buffer) ec = {};
            if (ec) throw boost::system::system_error(ec);
            std::size_t n = io_block - parser->get().body().size;
            if (n == 0) continue;
            if (to_sink) {
                receiver->piece(std::string_view(c.block.get(), n));
            } else if (resp.body.size() + n <= max_collect) {
                resp.body.append(c.block.get(), n);
            } else if (resp.status / 100 == 2) {
                throw transport_failure("the response body is larger than " + std::to_string(max_collect) + " bytes",
                                        {transport_failure::stage::receive, false, false, true, false, true});
            } else {
                // An error document that long is not one: keep its start, read past the rest.
                resp.body.append(c.block.get(), max_collect - resp.body.size());
            }
        }
        c.lowest().expires_never();
        reusable = parser->keep_alive() && !body_withheld;
        co_return resp;
    }

    http_response exchange(const http_request& req, const body_receiver* receiver, std::size_t max_collect) {
        progress p;
        bool reused = false;
        std::unique_ptr<connection> c = take_idle();
        try {
            if (c) reused = true;
            else c = open(p);
            bool reusable = false;
            http_response resp =
                c->tls ? run_on(c->ioc, exchange_on(*c, *c->tls, req, receiver, max_collect, p, reusable))
                       : run_on(c->ioc, exchange_on(*c, *c->plain, req, receiver, max_collect, p, reusable));
            if (reusable) give_back(std::move(c));
            return resp;
        } catch (const boost::system::system_error& e) {
            transport_failure::details d;
            d.where = p.where;
            d.timed_out = e.code() == beast::error::timeout;
            d.reused_connection = reused;
            d.answered = p.answered;
            d.certificate_rejected = p.where == transport_failure::stage::tls &&
                                     e.code().category() == net::error::get_ssl_category() &&
                                     ERR_GET_REASON(e.code().value()) == SSL_R_CERTIFICATE_VERIFY_FAILED;
            d.malformed = e.code().category() == http::make_error_code(http::error::bad_version).category() &&
                          e.code() != http::error::end_of_stream && e.code() != http::error::partial_message;
            std::string what;
            switch (p.where) {
                case transport_failure::stage::connect: what = "cannot connect to "; break;
                case transport_failure::stage::tls: what = "TLS handshake failed with "; break;
                case transport_failure::stage::send: what = "sending the request failed to "; break;
                case transport_failure::stage::receive: what = "reading the response failed from "; break;
            }
            what += cfg.target.authority + ": " + (d.timed_out ? "no progress within the timeout" : e.code().message());
            throw transport_failure(what, d);
        }
    }
};

transport::transport(transport_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}
transport::~transport() = default;

http_response transport::exchange(const http_request& req, const body_receiver* receiver, std::size_t max_collect) {
    return impl_->exchange(req, receiver, max_collect);
}

std::uint64_t transport::connections_opened() const noexcept { return impl_->opened.load(); }

}  // namespace aq::s3
