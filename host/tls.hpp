// TLS on the listener: OpenSSL driven directly on each connection's non-blocking socket.
//
// Why not Asio's ssl::stream: every stream allocates two 17 KiB buffers of its own and a BIO
// pair with two more, about 68 KiB per connection however idle it is, while the host keeps an
// idle connection to about 1 KiB (README, "How the host protects itself"); and its synchronous
// operations on a non-blocking socket can lose output mid-record. The connection already reads
// with non-blocking calls and readiness waits, which is exactly how OpenSSL wants to be driven on
// a file descriptor (SSL_set_fd): a call answers "done", "wait until readable" or "wait until
// writable". With SSL_MODE_RELEASE_BUFFERS OpenSSL frees its record buffers whenever they are
// empty, so an idle TLS connection holds its SSL object and session: about 15.7 KB of RSS, against
// 1.3 KB for a plain one (README, "TLS").
//
// tls_context is the certificate, key and protocol settings (TLS 1.2 or 1.3 at least, no
// renegotiation, ALPN http/1.1); it is built again from the files on every SIGHUP, and a
// connection keeps the one it was accepted with (OpenSSL counts its references), so a reload
// never touches established connections. Deliberately free of OpenSSL headers.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

struct ssl_ctx_st;
struct ssl_st;

namespace aqd {

struct tls_config;

class tls_context {
public:
    // Loads the certificate chain and the key. Throws std::runtime_error naming the file and
    // OpenSSL's reason (also when the key does not match the certificate).
    explicit tls_context(const tls_config& cfg);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    ssl_ctx_st* native() const noexcept { return ctx_; }
    // "subject CN=..., serial ..., valid until ..." for the log.
    const std::string& description() const noexcept { return description_; }

private:
    ssl_ctx_st* ctx_ = nullptr;
    std::string description_;
};

// The context new connections get. Thread: any.
class tls_contexts {
public:
    explicit tls_contexts(std::shared_ptr<const tls_context> first) : current_(std::move(first)) {}
    std::shared_ptr<const tls_context> current() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    void replace(std::shared_ptr<const tls_context> next) {
        std::lock_guard lock(mutex_);
        current_ = std::move(next);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const tls_context> current_;
};

// One connection's TLS session on its socket. Every call is non-blocking and must come from the
// connection's strand; the outcome says what to wait for before calling again.
class tls_session {
public:
    enum class outcome {
        done,        // the call did its work (n says how much)
        want_read,   // call again once the socket is readable
        want_write,  // call again once the socket is writable
        closed,      // the peer closed (close_notify or end of stream)
        failed,      // a protocol or socket error; error() says which
    };

    // Throws std::runtime_error when OpenSSL cannot make a session (out of memory).
    tls_session(const tls_context& ctx, int fd);
    ~tls_session();
    tls_session(const tls_session&) = delete;
    tls_session& operator=(const tls_session&) = delete;

    outcome handshake();
    outcome read(char* buf, std::size_t cap, std::size_t& n);
    outcome write(const char* data, std::size_t len, std::size_t& n);
    // Sends close_notify if the socket takes it now; never waits.
    void close_notify() noexcept;
    // Decrypted bytes are waiting inside OpenSSL: read again without waiting for the socket.
    bool pending() const noexcept;

    // After a failed handshake: the client spoke plain HTTP to this port.
    bool plain_http() const noexcept { return plain_http_; }
    const std::string& error() const noexcept { return error_; }

private:
    outcome after(int ret);  // maps SSL_get_error for the last call

    ssl_st* ssl_ = nullptr;
    bool plain_http_ = false;
    std::string error_;
};

}  // namespace aqd
