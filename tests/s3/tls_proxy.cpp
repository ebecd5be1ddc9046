#include "tls_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace aqt {

struct tls_proxy::impl {
    unsigned short upstream;
    SSL_CTX* ctx = nullptr;
    int listen_fd = -1;
    unsigned short port = 0;
    std::atomic<bool> stopping{false};
    std::atomic<int> handshakes{0};
    std::mutex mutex;
    std::vector<std::thread> workers;
    std::thread acceptor;

    impl(unsigned short up, const std::string& cert, const std::string& key) : upstream(up) {
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
            if (ctx) SSL_CTX_free(ctx);
            throw std::runtime_error("tls_proxy: cannot load " + cert + " / " + key);
        }
        listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd, 64) != 0)
            throw std::runtime_error(std::string("tls_proxy: cannot listen: ") + std::strerror(errno));
        socklen_t len = sizeof a;
        ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        acceptor = std::thread([this] { accept_loop(); });
    }

    ~impl() {
        stopping = true;
        acceptor.join();
        ::close(listen_fd);
        for (auto& w : workers) w.join();
        SSL_CTX_free(ctx);
    }

    void accept_loop() {
        while (!stopping) {
            pollfd p{listen_fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int fd = ::accept(listen_fd, nullptr, nullptr);
            if (fd < 0) continue;
            std::lock_guard lock(mutex);
            workers.emplace_back([this, fd] { serve(fd); });
        }
    }

    int connect_upstream() const {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(upstream);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd);
            return -1;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }

    void serve(int client) {
        SSL* ssl = SSL_new(ctx);
        SSL_set_fd(ssl, client);
        int up = -1;
        if (SSL_accept(ssl) == 1) {  // a client that refuses the certificate ends here
            ++handshakes;
            up = connect_upstream();
        }
        char buf[65536];
        while (up >= 0 && !stopping) {
            // Bytes OpenSSL already decrypted do not show on the socket: read them first.
            bool client_ready = SSL_pending(ssl) > 0;
            bool up_ready = false;
            if (!client_ready) {
                pollfd p[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
                if (::poll(p, 2, 200) < 0 && errno != EINTR) break;
                client_ready = p[0].revents & (POLLIN | POLLHUP | POLLERR);
                up_ready = p[1].revents & (POLLIN | POLLHUP | POLLERR);
            }
            if (client_ready) {
                int n = SSL_read(ssl, buf, sizeof buf);
                if (n <= 0) break;
                if (::send(up, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
            }
            if (up_ready) {
                ssize_t n = ::recv(up, buf, sizeof buf, 0);
                if (n <= 0) break;
                if (SSL_write(ssl, buf, static_cast<int>(n)) != n) break;
            }
        }
        if (up >= 0) ::close(up);
        SSL_free(ssl);
        ::close(client);
    }
};

tls_proxy::tls_proxy(unsigned short upstream_port, const std::string& cert_file, const std::string& key_file)
    : impl_(std::make_unique<impl>(upstream_port, cert_file, key_file)) {}
tls_proxy::~tls_proxy() = default;

unsigned short tls_proxy::port() const noexcept { return impl_->port; }
int tls_proxy::handshakes() const noexcept { return impl_->handshakes.load(); }

}  // namespace aqt
