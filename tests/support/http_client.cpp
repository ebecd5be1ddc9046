#include "http_client.hpp"

#include "digest.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cctype>
#include <stdexcept>

namespace aqt::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string hex_size(std::size_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return buf;
}

}  // namespace

std::string response::header(std::string_view name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? std::string() : it->second;
}

bool response::has_header(std::string_view name) const { return headers.count(lower(name)) != 0; }

boost::json::value response::json() const { return boost::json::parse(body); }

struct client::impl {
    unsigned short port;
    std::chrono::milliseconds timeout;
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
    int connections = 0;
    bool open = false;

    impl(unsigned short p, std::chrono::milliseconds t) : port(p), timeout(t) {}

    // Runs one asynchronous operation to completion with the client's timeout.
    template <class Start>
    std::size_t run(Start&& start) {
        boost::system::error_code result;
        std::size_t bytes = 0;
        stream.expires_after(timeout);
        start([&](boost::system::error_code ec, std::size_t n) {
            result = ec;
            bytes = n;
        });
        ioc.restart();
        ioc.run();
        if (result) throw boost::system::system_error(result);
        return bytes;
    }

    void connect() {
        close();
        tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
        boost::system::error_code result;
        stream.expires_after(timeout);
        stream.async_connect(ep, [&](boost::system::error_code ec) { result = ec; });
        ioc.restart();
        ioc.run();
        if (result)
            throw boost::system::system_error(result, "connect 127.0.0.1:" + std::to_string(port));
        stream.socket().set_option(tcp::no_delay(true));
        ++connections;
        open = true;
        buffer.clear();
    }

    void close() {
        if (!open) return;
        boost::system::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream.socket().close(ec);
        open = false;
    }

    void write(std::string_view data) {
        run([&](auto handler) { asio::async_write(stream, asio::buffer(data.data(), data.size()), handler); });
    }

    void write_body(const http::request& req, bool chunked) {
        auto put = [&](std::string_view piece) {
            if (piece.empty()) return;
            if (chunked) {
                write(hex_size(piece.size()) + "\r\n");
                write(piece);
                write("\r\n");
            } else {
                write(piece);
            }
        };
        if (req.body_source) {
            std::string buf(req.chunk_size ? req.chunk_size : 65536, '\0');
            while (std::size_t n = req.body_source(buf.data(), buf.size())) put(std::string_view(buf.data(), n));
        } else if (chunked) {
            std::size_t step = req.chunk_size ? req.chunk_size : req.body.size();
            for (std::size_t at = 0; at < req.body.size(); at += step)
                put(std::string_view(req.body).substr(at, step));
        } else {
            put(req.body);
        }
        if (chunked) write("0\r\n\r\n");
    }

    // Reads one response (interim or final) into `out`. Returns whether the server keeps the
    // connection open.
    bool read_response(response& out, bool head_request, bool keep_body) {
        bhttp::response_parser<bhttp::buffer_body> parser;
        parser.body_limit(boost::none);
        parser.header_limit(1 << 20);
        if (head_request) parser.skip(true);
        run([&](auto handler) { bhttp::async_read_header(stream, buffer, parser, handler); });
        auto& msg = parser.get();
        out.status = static_cast<int>(msg.result_int());
        out.headers.clear();
        for (auto& f : msg) {
            std::string name = lower(f.name_string());
            auto [it, fresh] = out.headers.emplace(name, std::string(f.value()));
            if (!fresh) it->second += ", " + std::string(f.value());
        }
        if (out.status >= 100 && out.status < 200) return true;
        out.body.clear();
        out.body_bytes = 0;
        sha256 digest;
        char chunk[65536];
        while (!parser.is_done()) {
            msg.body().data = chunk;
            msg.body().size = sizeof chunk;
            boost::system::error_code result;
            stream.expires_after(timeout);
            bhttp::async_read_some(stream, buffer, parser,
                                   [&](boost::system::error_code ec, std::size_t) { result = ec; });
            ioc.restart();
            ioc.run();
            if (result == bhttp::error::need_buffer) result = {};
            if (result) throw boost::system::system_error(result, "reading response body");
            std::size_t n = sizeof chunk - msg.body().size;
            std::string_view piece(chunk, n);
            digest.update(piece);
            out.body_bytes += n;
            if (keep_body) out.body.append(piece);
        }
        out.body_sha256 = digest.hex();
        return msg.keep_alive();
    }
};

client::client(unsigned short port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(port, timeout)) {}

client::~client() = default;

int client::connections() const noexcept { return impl_->connections; }
bool client::connected() const noexcept { return impl_->open; }
void client::close() { impl_->close(); }

response client::request(const std::string& method, const std::string& target, const header_list& headers,
                         const std::string& body) {
    http::request req;
    req.method = method;
    req.target = target;
    req.headers = headers;
    req.body = body;
    return send(req);
}

response client::send(const http::request& req) {
    // Merge default headers under the request's own.
    header_list headers = req.headers;
    auto has = [&](std::string_view name) {
        for (auto& [k, v] : headers)
            if (lower(k) == lower(name)) return true;
        return false;
    };
    for (auto& [k, v] : default_headers)
        if (!has(k)) headers.emplace_back(k, v);
    bool expect_continue = false;
    for (auto& [k, v] : headers)
        if (lower(k) == "expect" && lower(v) == "100-continue") expect_continue = true;

    // Framing: explicit Content-Length / Transfer-Encoding headers from the test win (the body is
    // then sent verbatim); otherwise the client picks.
    bool framed_by_test = has("content-length") || has("transfer-encoding");
    bool chunked = false;
    std::string head = req.method + " " + req.target + " HTTP/1.1\r\n";
    if (!has("host")) head += "Host: 127.0.0.1:" + std::to_string(impl_->port) + "\r\n";
    for (auto& [k, v] : headers) head += k + ": " + v + "\r\n";
    if (!framed_by_test) {
        if (req.body_source) {
            if (req.content_length)
                head += "Content-Length: " + std::to_string(*req.content_length) + "\r\n";
            else
                chunked = true;
        } else if (req.chunked) {
            chunked = true;
        } else if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
            head += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
        }
        if (chunked) head += "Transfer-Encoding: chunked\r\n";
    } else if (req.chunked) {
        chunked = true;
    }
    head += "\r\n";

    bool head_request = req.method == "HEAD";
    // A reused keep-alive connection may have been closed by the server in the meantime: retry
    // once on a fresh connection when nothing at all came back.
    for (int attempt = 0;; ++attempt) {
        bool reused = impl_->open;
        if (!impl_->open) impl_->connect();
        response out;
        try {
            impl_->write(head);
            if (expect_continue) {
                impl_->read_response(out, head_request, req.keep_body);
                if (out.status == 100) {
                    out.saw_continue = true;
                } else {
                    // A final answer instead of 100 Continue: the body is never sent, and the
                    // connection's framing is now unknown, so it is not reused.
                    impl_->close();
                    return out;
                }
            }
            impl_->write_body(req, chunked);
            bool keep = impl_->read_response(out, head_request, req.keep_body);
            while (out.status >= 100 && out.status < 200) {
                out.saw_continue = out.saw_continue || out.status == 100;
                keep = impl_->read_response(out, head_request, req.keep_body);
            }
            if (!keep) impl_->close();
            return out;
        } catch (const boost::system::system_error& e) {
            impl_->close();
            bool stale = e.code() == bhttp::error::end_of_stream || e.code() == asio::error::eof ||
                         e.code() == asio::error::connection_reset || e.code() == asio::error::broken_pipe;
            if (reused && stale && attempt == 0 && out.status == 0 && !req.body_source) continue;
            throw std::runtime_error(req.method + " " + req.target + ": " + e.what());
        }
    }
}

}  // namespace aqt::http
