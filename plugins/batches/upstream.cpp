#include "upstream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <stdexcept>
#include <thread>

namespace batches {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t max_response_bytes = 64ull << 20;

struct connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

struct job {
    std::string path, body;
    std::vector<std::pair<std::string, std::string>> headers;  // x-request-id, webhook-signature ...
    start_check check;
    std::function<void(upstream_reply)> done;
};

struct endpoint {
    upstream_config cfg;
    bool https = false;
    std::string host, port, base_path, host_header;
    std::deque<job> queue;
    unsigned active = 0;
    std::vector<std::unique_ptr<connection>> idle;
    std::atomic<std::size_t> load{0};
};

// Splits "http(s)://host[:port]/path" (already validated by config).
void parse_base(endpoint& e) {
    std::string_view url = e.cfg.base_url;
    e.https = url.starts_with("https://");
    url.remove_prefix(e.https ? 8 : 7);
    auto slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    e.base_path = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
    e.host_header = std::string(authority);
    if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
        auto close = authority.find(']');
        e.host = std::string(authority.substr(1, close - 1));
        auto rest = authority.substr(close + 1);
        e.port = rest.starts_with(":") ? std::string(rest.substr(1)) : "";
    } else {
        auto colon = authority.rfind(':');
        e.host = std::string(authority.substr(0, colon));
        e.port = colon == std::string_view::npos ? "" : std::string(authority.substr(colon + 1));
    }
    if (e.port.empty()) e.port = e.https ? "443" : "80";
}

std::optional<std::string> header_value(const http::fields& h, std::string_view name) {
    auto it = h.find(name);
    if (it == h.end()) return std::nullopt;
    return std::string(it->value());
}

}  // namespace

struct upstream_client::impl {
    net::io_context io{1};
    net::executor_work_guard<net::io_context::executor_type> work{io.get_executor()};
    ssl::context tls{ssl::context::tls_client};
    std::vector<std::unique_ptr<endpoint>> endpoints;
    std::thread thread;

    explicit impl(const std::vector<upstream_config>& ups) {
        tls.set_default_verify_paths();
        tls.set_verify_mode(ssl::verify_peer);
        for (const auto& u : ups) {
            auto e = std::make_unique<endpoint>();
            e->cfg = u;
            parse_base(*e);
            endpoints.push_back(std::move(e));
        }
        thread = std::thread([this] { io.run(); });
    }

    ~impl() {
        work.reset();
        io.stop();
        if (thread.joinable()) thread.join();
    }

    // Starts queued jobs while the upstream has room. I/O thread.
    // Starts queued jobs while the upstream has room, each after its start check. I/O thread.
    void pump(endpoint& e) {
        while (e.active < e.cfg.max_concurrency && !e.queue.empty()) {
            job j = std::move(e.queue.front());
            e.queue.pop_front();
            const char* refused = nullptr;
            try {
                refused = j.check ? j.check() : nullptr;
            } catch (...) {
                refused = "start_check_failed";
            }
            if (refused) {
                upstream_reply r;
                r.started = false;
                r.error_code = refused;
                --e.load;
                finish(j, std::move(r));
                continue;
            }
            ++e.active;
            net::co_spawn(io, run(e, std::move(j)), net::detached);
        }
    }

    static void finish(job& j, upstream_reply reply) {
        try {
            j.done(std::move(reply));
        } catch (...) {
            // The runner's callback only queues; nothing useful to do with a failure here.
        }
    }

    net::awaitable<void> run(endpoint& e, job j) {
        upstream_reply reply = co_await exchange(e, j);
        --e.active;
        --e.load;
        finish(j, std::move(reply));
        pump(e);
    }

    net::awaitable<std::unique_ptr<connection>> connect(endpoint& e, clock_type::time_point deadline) {
        tcp::resolver resolver(io);
        auto results = co_await resolver.async_resolve(e.host, e.port, net::use_awaitable);
        auto c = std::make_unique<connection>();
        if (e.https) {
            c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, tls);
            if (!SSL_set_tlsext_host_name(c->tls->native_handle(), e.host.c_str()))
                throw std::runtime_error("cannot set TLS server name");
            c->tls->set_verify_callback(ssl::host_name_verification(e.host));
        } else {
            c->plain = std::make_unique<beast::tcp_stream>(io);
        }
        c->lowest().expires_at(deadline);
        co_await c->lowest().async_connect(results, net::use_awaitable);
        c->lowest().socket().set_option(tcp::no_delay(true));
        if (c->tls) co_await c->tls->async_handshake(ssl::stream_base::client, net::use_awaitable);
        co_return c;
    }

    net::awaitable<upstream_reply> exchange(endpoint& e, job& j) {
        auto deadline = clock_type::now() + std::chrono::seconds(e.cfg.timeout_seconds);
        for (int attempt = 0;; ++attempt) {
            std::unique_ptr<connection> c;
            bool reused = false;
            if (!e.idle.empty()) {
                c = std::move(e.idle.back());
                e.idle.pop_back();
                reused = true;
            }
            http::response_parser<http::string_body> parser;
            parser.body_limit(max_response_bytes);
            boost::system::error_code failure;
            std::string failure_text;
            try {
                if (!c) c = co_await connect(e, deadline);
                http::request<http::string_body> req{http::verb::post, e.base_path + j.path, 11};
                req.set(http::field::host, e.host_header);
                req.set(http::field::user_agent, "aqueduct-batches/1");
                req.set(http::field::content_type, "application/json");
                req.set(http::field::accept, "application/json");
                if (!e.cfg.api_key.empty()) req.set(http::field::authorization, "Bearer " + e.cfg.api_key);
                for (const auto& [name, value] : j.headers) req.set(name, value);
                req.keep_alive(true);
                req.body() = j.body;
                req.prepare_payload();
                c->lowest().expires_at(deadline);
                if (c->tls) {
                    co_await http::async_write(*c->tls, req, net::use_awaitable);
                    co_await http::async_read(*c->tls, c->buffer, parser, net::use_awaitable);
                } else {
                    co_await http::async_write(*c->plain, req, net::use_awaitable);
                    co_await http::async_read(*c->plain, c->buffer, parser, net::use_awaitable);
                }
                auto& res = parser.get();
                upstream_reply r;
                r.status = static_cast<int>(res.result_int());
                if (auto it = res.find("x-request-id"); it != res.end()) r.request_id = std::string(it->value());
                r.retry_after = header_value(res, "retry-after");
                r.retry_after_ms = header_value(res, "retry-after-ms");
                r.body = std::move(res.body());
                if (res.keep_alive() && e.idle.size() < e.cfg.max_concurrency) {
                    c->lowest().expires_never();
                    e.idle.push_back(std::move(c));
                }
                co_return r;
            } catch (const boost::system::system_error& err) {
                failure = err.code();
                failure_text = err.code().message();
            } catch (const std::exception& err) {
                failure = net::error::fault;
                failure_text = err.what();
            }
            // A kept-alive connection the server had closed: try once more on a fresh one.
            if (reused && attempt == 0 && !parser.got_some() && failure != beast::error::timeout &&
                clock_type::now() < deadline)
                continue;
            upstream_reply r;
            if (failure == beast::error::timeout) {
                r.error_code = "timeout";
                r.error_message = "The upstream did not answer within " + std::to_string(e.cfg.timeout_seconds) + " s.";
            } else if (failure.category() == http::make_error_code(http::error::bad_version).category() &&
                       failure != http::error::end_of_stream && failure != http::error::partial_message) {
                r.error_code = "invalid_response";
                r.error_message = "The upstream sent an invalid HTTP response: " + failure_text + ".";
            } else {
                r.error_code = "connection_error";
                r.error_message = "The connection to the upstream failed: " + failure_text + ".";
            }
            co_return r;
        }
    }
};

upstream_client::upstream_client(const std::vector<upstream_config>& upstreams)
    : impl_(std::make_unique<impl>(upstreams)) {}

upstream_client::~upstream_client() = default;

void upstream_client::send(std::size_t upstream, std::string path, std::string body, std::string request_id,
                           start_check check, std::function<void(upstream_reply)> done) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!request_id.empty()) headers.emplace_back("x-request-id", std::move(request_id));
    send(upstream, std::move(path), std::move(body), std::move(headers), std::move(check), std::move(done));
}

void upstream_client::send(std::size_t upstream, std::string path, std::string body,
                           std::vector<std::pair<std::string, std::string>> headers, start_check check,
                           std::function<void(upstream_reply)> done) {
    endpoint& e = *impl_->endpoints.at(upstream);
    ++e.load;
    net::post(impl_->io, [this, &e, j = job{std::move(path), std::move(body), std::move(headers), std::move(check),
                                            std::move(done)}]() mutable {
        e.queue.push_back(std::move(j));
        impl_->pump(e);
    });
}

std::size_t upstream_client::load(std::size_t upstream) const { return impl_->endpoints.at(upstream)->load.load(); }

}  // namespace batches
