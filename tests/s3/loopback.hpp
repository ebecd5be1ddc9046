// Plain TCP on 127.0.0.1 for the test proxies (fault_proxy, tls_proxy): an acceptor on a free
// port that serves each connection on its own thread, a connection to a port, and a full send.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace aqt {

// Accepts on 127.0.0.1 (a port the kernel picks) and runs serve(fd) for each connection on its
// own thread. The acceptor owns the fd: serve must not close it (it is closed when serve returns).
class loopback_acceptor {
public:
    explicit loopback_acceptor(std::function<void(int fd)> serve);
    // Stops accepting, shuts every open connection down (so each serve sees its peer go) and
    // joins their threads.
    ~loopback_acceptor();
    loopback_acceptor(const loopback_acceptor&) = delete;
    loopback_acceptor& operator=(const loopback_acceptor&) = delete;

    unsigned short port() const noexcept;
    int accepted() const noexcept;
    // Ends every open connection now (shutdown both ways); serve sees end of stream.
    void shutdown_all();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};
// Connects to 127.0.0.1:port with TCP_NODELAY; -1 when refused.
int connect_loopback(unsigned short port);
// Sends all `n` bytes (no SIGPIPE); false when the peer is gone.
bool send_all(int fd, const char* data, std::size_t n);

}  // namespace aqt
