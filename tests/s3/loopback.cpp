#include "loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace aqt {

namespace {

int listen_loopback(unsigned short& port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
        std::string why = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot listen on 127.0.0.1: " + why);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

void no_delay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

struct loopback_acceptor::impl {
    std::function<void(int)> serve;
    unsigned short port = 0;
    int listen_fd = -1;
    std::atomic<bool> stopping{false};
    std::atomic<int> accepted{0};
    std::mutex mutex;
    std::set<int> open;
    std::vector<std::thread> threads;
    std::thread acceptor;

    explicit impl(std::function<void(int)> fn) : serve(std::move(fn)) {
        listen_fd = listen_loopback(port);
        acceptor = std::thread([this] { run(); });
    }

    void run() {
        while (!stopping) {
            pollfd p{listen_fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int fd = ::accept(listen_fd, nullptr, nullptr);
            if (fd < 0) continue;
            ++accepted;
            no_delay(fd);
            std::lock_guard lock(mutex);
            open.insert(fd);
            threads.emplace_back([this, fd] {
                serve(fd);
                {
                    std::lock_guard l(mutex);  // never shut down after close: the number may be reused
                    open.erase(fd);
                }
                ::close(fd);
            });
        }
    }

    void shutdown_all() {
        std::lock_guard lock(mutex);
        for (int fd : open) ::shutdown(fd, SHUT_RDWR);
    }

    ~impl() {
        stopping = true;
        acceptor.join();
        ::close(listen_fd);
        shutdown_all();
        for (auto& t : threads) t.join();  // no thread is added any more
    }
};

loopback_acceptor::loopback_acceptor(std::function<void(int)> serve)
    : impl_(std::make_unique<impl>(std::move(serve))) {}
loopback_acceptor::~loopback_acceptor() = default;
unsigned short loopback_acceptor::port() const noexcept { return impl_->port; }
int loopback_acceptor::accepted() const noexcept { return impl_->accepted.load(); }
void loopback_acceptor::shutdown_all() { impl_->shutdown_all(); }

int connect_loopback(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    no_delay(fd);
    return fd;
}

bool send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

}  // namespace aqt
