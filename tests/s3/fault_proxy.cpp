#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace aqt {

namespace {

bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

int connect_local(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Closes after the peer had a chance to read what was sent: closing a socket with unread input
// sends a reset, which can destroy the answer before the client reads it.
void lingering_close(int fd) {
    ::shutdown(fd, SHUT_WR);
    char sink[65536];
    for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        if (::recv(fd, sink, sizeof sink, 0) <= 0) break;
    }
    ::close(fd);
}

}  // namespace

std::string slow_down_response() {
    std::string body =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
        "<Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

struct fault_proxy::impl {
    unsigned short upstream;
    int listen_fd = -1;
    unsigned short port = 0;
    std::atomic<bool> stopping{false};
    std::atomic<int> accepted{0}, delivered{0};

    std::mutex mutex;  // guards everything below
    int answer_left = 0;
    std::string answer;
    int drop_left = 0;
    std::optional<std::uint64_t> cut_request, cut_response, corrupt_request;
    std::set<int> open_fds;
    std::vector<std::thread> workers;
    std::thread acceptor;

    explicit impl(unsigned short up) : upstream(up) {
        listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd, 64) != 0)
            throw std::runtime_error(std::string("fault_proxy: cannot listen: ") + std::strerror(errno));
        socklen_t len = sizeof a;
        ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        acceptor = std::thread([this] { accept_loop(); });
    }

    ~impl() {
        stopping = true;
        acceptor.join();
        ::close(listen_fd);
        shutdown_all();
        std::vector<std::thread> ws;
        {
            std::lock_guard lock(mutex);
            ws.swap(workers);
        }
        for (auto& w : ws) w.join();
    }

    void shutdown_all() {
        std::lock_guard lock(mutex);
        for (int fd : open_fds) ::shutdown(fd, SHUT_RDWR);
    }

    void track(int fd, bool add) {
        std::lock_guard lock(mutex);
        if (add) open_fds.insert(fd);
        else open_fds.erase(fd);
    }

    void accept_loop() {
        while (!stopping) {
            pollfd p{listen_fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int fd = ::accept(listen_fd, nullptr, nullptr);
            if (fd < 0) continue;
            ++accepted;
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            track(fd, true);
            std::lock_guard lock(mutex);
            workers.emplace_back([this, fd] { serve(fd); });
        }
    }

    void serve(int client) {
        // The first request's header.
        std::string head;
        char buf[65536];
        while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
            ssize_t n = ::recv(client, buf, sizeof buf, 0);
            if (n <= 0) {
                track(client, false);
                ::close(client);
                return;
            }
            head.append(buf, static_cast<std::size_t>(n));
        }

        enum class action { forward, answer, drop } act = action::forward;
        std::string reply;
        std::optional<std::uint64_t> cut_up, cut_down, flip_up;
        {
            std::lock_guard lock(mutex);
            if (answer_left > 0) {
                --answer_left;
                act = action::answer;
                reply = answer;
            } else if (drop_left > 0) {
                --drop_left;
                act = action::drop;
            } else {
                cut_up = std::exchange(cut_request, std::nullopt);
                cut_down = std::exchange(cut_response, std::nullopt);
                flip_up = std::exchange(corrupt_request, std::nullopt);
            }
        }
        if (act == action::answer) {
            ++delivered;
            write_all(client, reply.data(), reply.size());
            track(client, false);
            lingering_close(client);
            return;
        }
        if (act == action::drop) {
            ++delivered;
            track(client, false);
            ::close(client);
            return;
        }

        int up = connect_local(upstream);
        if (up < 0) {
            track(client, false);
            ::close(client);
            return;
        }
        track(up, true);
        std::uint64_t sent_up = 0, sent_down = 0;
        bool cut = false;
        // Forwards `n` bytes, stopping at a cut's limit. Returns false when the connection ends.
        auto forward = [&](int to, char* data, std::size_t n, std::uint64_t& count,
                           const std::optional<std::uint64_t>& limit) {
            if (to == up && flip_up && *flip_up >= count && *flip_up < count + n) {
                data[*flip_up - count] ^= 0x20;
                flip_up.reset();
                ++delivered;
            }
            std::size_t allowed = n;
            if (limit && count + n >= *limit) {
                allowed = static_cast<std::size_t>(*limit - count);
                cut = true;
            }
            bool ok = write_all(to, data, allowed);
            count += allowed;
            return ok && !cut;
        };
        bool open = forward(up, head.data(), head.size(), sent_up, cut_up);
        while (open) {
            pollfd p[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
            if (::poll(p, 2, 1000) < 0 && errno != EINTR) break;
            for (int i = 0; i < 2 && open; ++i) {
                if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
                if (n <= 0) {
                    open = false;
                    break;
                }
                open = i == 0 ? forward(up, buf, static_cast<std::size_t>(n), sent_up, cut_up)
                              : forward(client, buf, static_cast<std::size_t>(n), sent_down, cut_down);
            }
        }
        if (cut) ++delivered;
        track(client, false);
        track(up, false);
        ::close(up);
        ::close(client);
    }
};

fault_proxy::fault_proxy(unsigned short upstream_port) : impl_(std::make_unique<impl>(upstream_port)) {}
fault_proxy::~fault_proxy() = default;

unsigned short fault_proxy::port() const noexcept { return impl_->port; }

void fault_proxy::answer_next(int n, std::string raw_response) {
    std::lock_guard lock(impl_->mutex);
    impl_->answer_left = n;
    impl_->answer = std::move(raw_response);
}

void fault_proxy::drop_next(int n) {
    std::lock_guard lock(impl_->mutex);
    impl_->drop_left = n;
}

void fault_proxy::cut_request_after(std::uint64_t bytes) {
    std::lock_guard lock(impl_->mutex);
    impl_->cut_request = bytes;
}

void fault_proxy::cut_response_after(std::uint64_t bytes) {
    std::lock_guard lock(impl_->mutex);
    impl_->cut_response = bytes;
}

void fault_proxy::corrupt_request_at(std::uint64_t offset) {
    std::lock_guard lock(impl_->mutex);
    impl_->corrupt_request = offset;
}

void fault_proxy::close_all() { impl_->shutdown_all(); }

int fault_proxy::connections() const noexcept { return impl_->accepted.load(); }
int fault_proxy::faults() const noexcept { return impl_->delivered.load(); }

}  // namespace aqt
