#include "tls_proxy.hpp"

#include "loopback.hpp"

#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <stdexcept>

namespace aqt {

namespace {
struct ctx_free {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
}  // namespace

struct tls_proxy::impl {
    unsigned short upstream;
    std::unique_ptr<SSL_CTX, ctx_free> ctx;
    std::atomic<int> handshakes{0};
    loopback_acceptor acceptor{[this](int fd) { serve(fd); }};  // last: stops first

    impl(unsigned short up, const std::string& cert, const std::string& key)
        : upstream(up), ctx(load(cert, key)) {}

    static SSL_CTX* load(const std::string& cert, const std::string& key) {
        SSL_CTX* c = SSL_CTX_new(TLS_server_method());
        if (!c || SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1) {
            if (c) SSL_CTX_free(c);
            throw std::runtime_error("tls_proxy: cannot load " + cert + " / " + key);
        }
        return c;
    }

    void serve(int client) {
        std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
        SSL_set_fd(ssl.get(), client);
        if (SSL_accept(ssl.get()) != 1) return;  // a client that refuses the certificate ends here
        ++handshakes;
        int up = connect_loopback(upstream);
        char buf[65536];
        while (up >= 0) {
            // Bytes OpenSSL already decrypted do not show on the socket: read them first.
            bool client_ready = SSL_pending(ssl.get()) > 0;
            bool up_ready = false;
            if (!client_ready) {
                pollfd p[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
                if (::poll(p, 2, 200) < 0 && errno != EINTR) break;
                client_ready = p[0].revents & (POLLIN | POLLHUP | POLLERR);
                up_ready = p[1].revents & (POLLIN | POLLHUP | POLLERR);
            }
            if (client_ready) {
                int n = SSL_read(ssl.get(), buf, sizeof buf);
                if (n <= 0 || !send_all(up, buf, static_cast<std::size_t>(n))) break;
            }
            if (up_ready) {
                ssize_t n = ::recv(up, buf, sizeof buf, 0);
                if (n <= 0 || SSL_write(ssl.get(), buf, static_cast<int>(n)) != n) break;
            }
        }
        if (up >= 0) ::close(up);
    }
};

tls_proxy::tls_proxy(unsigned short upstream_port, const std::string& cert_file, const std::string& key_file)
    : impl_(std::make_unique<impl>(upstream_port, cert_file, key_file)) {}
tls_proxy::~tls_proxy() = default;

unsigned short tls_proxy::port() const noexcept { return impl_->acceptor.port(); }
int tls_proxy::handshakes() const noexcept { return impl_->handshakes.load(); }

}  // namespace aqt
