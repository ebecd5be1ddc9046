#include "raw_connection.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <cctype>
#include <optional>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace aqt::raw {

using clock_type = std::chrono::steady_clock;

const char* to_string(ending e) noexcept {
    switch (e) {
    case ending::data: return "data";
    case ending::closed: return "closed";
    case ending::reset: return "reset";
    case ending::timeout: return "timeout";
    }
    return "?";
}

struct connection::tls_state {
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    ~tls_state() {
        if (ssl) SSL_free(ssl);
        if (ctx) SSL_CTX_free(ctx);
    }
};

namespace {

std::string openssl_reason() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += out.empty() ? "" : "; ";
        out += buf;
    }
    return out;
}

}  // namespace

connection::connection(unsigned short port) : connection(port, connection_options{}) {}

connection::connection(unsigned short port, const connection_options& options) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (options.receive_buffer > 0)
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer, sizeof options.receive_buffer);
    if (!options.source_address.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        if (::inet_pton(AF_INET, options.source_address.c_str(), &local.sin_addr) != 1 ||
            ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
            int err = errno;
            ::close(fd_);
            throw std::runtime_error("bind " + options.source_address + ": " + std::strerror(err));
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd_);
        throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err));
    }
    if (options.tls_ca_file.empty()) return;
    // A blocking handshake that verifies the chain and the name, as curl does.
    tls_ = std::make_unique<tls_state>();
    ERR_clear_error();
    const auto fail = [&](const std::string& what) {
        const std::string why = what + ": " + openssl_reason();
        tls_.reset();
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(why);
    };
    tls_->ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_->ctx) fail("SSL_CTX_new");
    if (options.tls_max_version) SSL_CTX_set_max_proto_version(tls_->ctx, options.tls_max_version);
    if (SSL_CTX_load_verify_locations(tls_->ctx, options.tls_ca_file.c_str(), nullptr) != 1) fail("load CA");
    SSL_CTX_set_verify(tls_->ctx, SSL_VERIFY_PEER, nullptr);
    tls_->ssl = SSL_new(tls_->ctx);
    if (!tls_->ssl || SSL_set_fd(tls_->ssl, fd_) != 1) fail("SSL_new");
    SSL_set_tlsext_host_name(tls_->ssl, options.tls_server_name.c_str());
    if (options.tls_server_name.find_first_not_of("0123456789.") == std::string::npos)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls_->ssl), options.tls_server_name.c_str());
    else
        SSL_set1_host(tls_->ssl, options.tls_server_name.c_str());
    if (SSL_connect(tls_->ssl) != 1) fail("TLS handshake with 127.0.0.1:" + std::to_string(port));
}

connection::~connection() {
    tls_.reset();
    if (fd_ >= 0) ::close(fd_);
}

std::string connection::peer_serial() const {
    if (!tls_) return {};
    X509* cert = SSL_get1_peer_certificate(tls_->ssl);
    if (!cert) return {};
    std::string out;
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
        if (char* hex = BN_bn2hex(bn)) {
            out = hex;
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    X509_free(cert);
    return out;
}

std::string connection::tls_version() const { return tls_ ? SSL_get_version(tls_->ssl) : ""; }

bool connection::send(std::string_view bytes) {
    if (tls_) {
        while (!bytes.empty()) {
            std::size_t n = 0;
            if (SSL_write_ex(tls_->ssl, bytes.data(), bytes.size(), &n) != 1) return false;
            bytes.remove_prefix(n);
        }
        return true;
    }
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void connection::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

ending connection::fill(clock_type::time_point deadline) {
    if (eof_) return ending::closed;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) return ending::timeout;
        // Bytes OpenSSL has decrypted already do not make the socket readable.
        if (!tls_ || SSL_pending(tls_->ssl) == 0) {
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return ending::timeout;
        }
        char buf[65536];
        if (tls_) {
            std::size_t got = 0;
            ERR_clear_error();
            if (SSL_read_ex(tls_->ssl, buf, sizeof buf, &got) == 1) {
                pending_.append(buf, got);
                return ending::data;
            }
            const int err = SSL_get_error(tls_->ssl, 0);
            if (err == SSL_ERROR_WANT_READ) continue;
            eof_ = true;
            return err == SSL_ERROR_ZERO_RETURN ? ending::closed : ending::reset;
        }
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            pending_.append(buf, static_cast<std::size_t>(n));
            return ending::data;
        }
        if (n == 0) {
            eof_ = true;
            return ending::closed;
        }
        if (errno == EINTR || errno == EAGAIN) continue;
        eof_ = true;
        return errno == ECONNRESET ? ending::reset : ending::closed;
    }
}

read_result connection::read_until(std::string_view needle, std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
        auto at = pending_.find(needle);
        if (at != std::string::npos) {
            read_result r{pending_.substr(0, at + needle.size()), ending::data};
            pending_.erase(0, at + needle.size());
            return r;
        }
        ending e = fill(deadline);
        if (e != ending::data) {
            read_result r{std::move(pending_), e};
            pending_.clear();
            return r;
        }
    }
}

read_result connection::read_until_close(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
        ending e = fill(deadline);
        if (e != ending::data) {
            read_result r{std::move(pending_), e};
            pending_.clear();
            return r;
        }
    }
}

read_result connection::read_for(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    ending e;
    while ((e = fill(deadline)) == ending::data) {
    }
    read_result r{std::move(pending_), e == ending::timeout ? ending::data : e};
    pending_.clear();
    return r;
}

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The value of a header in a raw header block, lowercase name; npos-safe.
std::optional<std::string> header_value(std::string_view head, std::string_view name) {
    std::string h = lower(head);
    std::string key = "\r\n" + std::string(name) + ":";
    auto at = h.find(key);
    if (at == std::string::npos) return std::nullopt;
    auto start = at + key.size();
    auto end = h.find("\r\n", start);
    std::string v(head.substr(start, end - start));
    auto b = v.find_first_not_of(" \t");
    auto e = v.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
}

}  // namespace

read_result connection::read_response(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    read_result head = read_until("\r\n\r\n", timeout);
    if (head.how != ending::data) return head;
    // Interim responses (100 Continue) have no body.
    if (head.data.size() > 9 && head.data.compare(0, 9, "HTTP/1.1 ") == 0 && head.data[9] == '1') return head;
    if (auto cl = header_value(head.data, "content-length")) {
        std::size_t want = std::stoull(*cl);
        while (pending_.size() < want) {
            ending e = fill(deadline);
            if (e != ending::data) {
                head.data += pending_;
                pending_.clear();
                head.how = e;
                return head;
            }
        }
        head.data += pending_.substr(0, want);
        pending_.erase(0, want);
        return head;
    }
    if (auto te = header_value(head.data, "transfer-encoding"); te && lower(*te).find("chunked") != std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        // An empty chunked body is just the last chunk; otherwise it follows a chunk's CRLF.
        while (pending_.size() < 5 && fill(deadline) == ending::data) {
        }
        read_result rest = pending_.compare(0, 5, "0\r\n\r\n") == 0 ? read_until("0\r\n\r\n", left)
                                                                   : read_until("\r\n0\r\n\r\n", left);
        head.data += rest.data;
        head.how = rest.how;
        return head;
    }
    return head;
}

std::vector<http::response> parse_responses(std::string_view bytes) {
    std::vector<http::response> out;
    while (!bytes.empty()) {
        auto head_end = bytes.find("\r\n\r\n");
        if (head_end == std::string_view::npos || bytes.compare(0, 9, "HTTP/1.1 ") != 0 || bytes.size() < 12)
            throw std::runtime_error("not an HTTP/1.1 response: " + std::string(bytes.substr(0, 200)));
        http::response r;
        r.status = std::stoi(std::string(bytes.substr(9, 3)));
        std::string_view head = bytes.substr(0, head_end + 2);
        for (auto line_start = head.find("\r\n") + 2; line_start < head.size();) {
            auto line_end = head.find("\r\n", line_start);
            std::string_view line = head.substr(line_start, line_end - line_start);
            auto colon = line.find(':');
            if (colon == std::string_view::npos) throw std::runtime_error("bad header line: " + std::string(line));
            std::string value(line.substr(colon + 1));
            value.erase(0, value.find_first_not_of(" \t"));
            value.erase(value.find_last_not_of(" \t") + 1);
            auto [it, fresh] = r.headers.emplace(lower(line.substr(0, colon)), value);
            if (!fresh) it->second += ", " + value;
            line_start = line_end + 2;
        }
        bytes.remove_prefix(head_end + 4);
        if (r.status >= 100 && r.status < 200) {
            // interim: no body
        } else if (r.has_header("content-length")) {
            std::size_t n = std::stoull(r.header("content-length"));
            if (n > bytes.size()) throw std::runtime_error("response body shorter than its Content-Length");
            r.body = std::string(bytes.substr(0, n));
            bytes.remove_prefix(n);
        } else if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
            for (;;) {
                auto eol = bytes.find("\r\n");
                if (eol == std::string_view::npos) throw std::runtime_error("truncated chunked body");
                std::size_t size = std::stoull(std::string(bytes.substr(0, eol)), nullptr, 16);
                bytes.remove_prefix(eol + 2);
                if (size == 0) {
                    auto end = bytes.find("\r\n");  // no trailers expected from the gateway
                    if (end == std::string_view::npos) throw std::runtime_error("truncated chunked body");
                    bytes.remove_prefix(end + 2);
                    break;
                }
                if (bytes.size() < size + 2) throw std::runtime_error("truncated chunk");
                r.body.append(bytes.substr(0, size));
                bytes.remove_prefix(size + 2);
            }
        } else {
            r.body = std::string(bytes);
            bytes = {};
        }
        r.body_bytes = r.body.size();
        out.push_back(std::move(r));
    }
    return out;
}

http::response parse_response(std::string_view bytes) {
    auto all = parse_responses(bytes);
    if (all.size() != 1)
        throw std::runtime_error("expected one response, got " + std::to_string(all.size()) + ": " +
                                 std::string(bytes.substr(0, 300)));
    return std::move(all.front());
}

}  // namespace aqt::raw
