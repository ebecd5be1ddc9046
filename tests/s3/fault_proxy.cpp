#include "fault_proxy.hpp"

#include "loopback.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <utility>

namespace aqt {

namespace {

// Ends the answer and lets the peer read it before the socket is closed: closing a socket with
// unread input sends a reset, which can destroy the answer before the client reads it.
void lingering_shutdown(int fd) {
    ::shutdown(fd, SHUT_WR);
    char sink[65536];
    for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        if (::recv(fd, sink, sizeof sink, 0) <= 0) break;
    }
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
    std::atomic<int> delivered{0};

    std::mutex mutex;  // guards the armed faults
    int answer_left = 0;
    std::string answer;
    int drop_left = 0;
    int stall_left = 0;
    std::optional<std::uint64_t> cut_request, cut_response, corrupt_request;

    loopback_acceptor acceptor{[this](int fd) { serve(fd); }};  // last: stops first

    explicit impl(unsigned short up) : upstream(up) {}

    void serve(int client) {
        // The first request's header.
        std::string head;
        char buf[65536];
        while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
            ssize_t n = ::recv(client, buf, sizeof buf, 0);
            if (n <= 0) return;
            head.append(buf, static_cast<std::size_t>(n));
        }

        enum class action { forward, answer, drop, stall } act = action::forward;
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
            } else if (stall_left > 0) {
                --stall_left;
                act = action::stall;
            } else {
                cut_up = std::exchange(cut_request, std::nullopt);
                cut_down = std::exchange(cut_response, std::nullopt);
                flip_up = std::exchange(corrupt_request, std::nullopt);
            }
        }
        if (act == action::answer) {
            ++delivered;
            send_all(client, reply.data(), reply.size());
            lingering_shutdown(client);
            return;
        }
        if (act == action::drop) {
            ++delivered;
            return;  // closed without a word
        }
        if (act == action::stall) {
            ++delivered;
            while (::recv(client, buf, sizeof buf, 0) > 0) {
                // Read and ignore until the client closes (or the proxy shuts down).
            }
            return;
        }

        int up = connect_loopback(upstream);
        if (up < 0) return;
        std::uint64_t sent_up = 0, sent_down = 0;
        bool cut = false;
        // Forwards `n` bytes, applying a flip and stopping at a cut. False when the connection ends.
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
            bool ok = send_all(to, data, allowed);
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
        ::close(up);
    }
};

fault_proxy::fault_proxy(unsigned short upstream_port) : impl_(std::make_unique<impl>(upstream_port)) {}
fault_proxy::~fault_proxy() = default;

unsigned short fault_proxy::port() const noexcept { return impl_->acceptor.port(); }

void fault_proxy::answer_next(int n, std::string raw_response) {
    std::lock_guard lock(impl_->mutex);
    impl_->answer_left = n;
    impl_->answer = std::move(raw_response);
}

void fault_proxy::drop_next(int n) {
    std::lock_guard lock(impl_->mutex);
    impl_->drop_left = n;
}

void fault_proxy::stall_next(int n) {
    std::lock_guard lock(impl_->mutex);
    impl_->stall_left = n;
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

void fault_proxy::close_all() { impl_->acceptor.shutdown_all(); }

int fault_proxy::connections() const noexcept { return impl_->acceptor.accepted(); }
int fault_proxy::faults() const noexcept { return impl_->delivered.load(); }

}  // namespace aqt
