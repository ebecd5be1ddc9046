// A listening socket (the plain one, and the TLS one when configured): accepts connections,
// enforces max_connections and max_connections_per_ip (counted over both listeners together),
// and survives descriptor exhaustion.
//
// Over a limit, a new connection gets a ready-made 503 (one non-blocking send) and is closed at
// once: no parser, no timer, no strand. On the TLS listener it is closed without a word: plain
// bytes would mean nothing to a client expecting a handshake. When accept fails for lack of descriptors (EMFILE,
// ENFILE) or kernel memory, retrying at once would spin: the pending connection stays in the
// backlog, so the listening socket stays readable and every retry fails again (the old host
// burned a core and wrote 700,000 log lines in a few seconds). Instead the listener pauses
// accepting for accept_pause, and logs once per log_interval with the number of failures;
// pending clients wait in the kernel's backlog and are served as soon as descriptors free up.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace aqd {

struct config;
struct host_metrics;

// A connection's place under the connection limits; released when the socket closes.
class connection_slot {
public:
    connection_slot() = default;
    connection_slot(connection_slot&& o) noexcept;
    connection_slot& operator=(connection_slot&& o) noexcept;
    connection_slot(const connection_slot&) = delete;
    connection_slot& operator=(const connection_slot&) = delete;
    ~connection_slot() { release(); }
    void release() noexcept;

    using address_key = std::array<unsigned char, 16>;  // IPv4 as v4-mapped IPv6
    struct counts;
    // The counts a server's listeners share.
    static std::shared_ptr<counts> make_counts();

private:
    friend class listener;
    connection_slot(std::shared_ptr<counts> c, address_key key) : counts_(std::move(c)), key_(key) {}
    std::shared_ptr<counts> counts_;
    address_key key_{};
};

class listener : public std::enable_shared_from_this<listener> {
public:
    using on_connection = std::function<void(boost::asio::ip::tcp::socket, connection_slot)>;

    static constexpr std::chrono::milliseconds accept_pause{100};
    static constexpr std::chrono::seconds log_interval{10};

    // Listens on address:port; the limits come from cfg. `tls`: over a limit, close without a
    // plain 503.
    listener(boost::asio::io_context& ioc, const config& cfg, std::string address, std::uint16_t port,
             std::shared_ptr<connection_slot::counts> counts, bool tls, host_metrics& metrics, on_connection fn);

    // Binds and listens; returns "ADDR:PORT" with the real port. Throws std::system_error whose
    // message starts with ADDR:PORT.
    std::string open();
    void start();
    // Closes the listening socket (from any thread). Connections already accepted stay.
    void stop();

    // Open connections now (tests and logs).
    std::uint32_t open_connections() const;

private:
    void accept();
    void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
    void refuse(boost::asio::ip::tcp::socket& socket, std::string_view message);
    // Logs `what` at most once per log_interval, with how often it happened meanwhile.
    struct throttled_log {
        std::chrono::steady_clock::time_point last{};
        std::uint64_t suppressed = 0;
        void note(std::string_view what);
    };

    boost::asio::io_context& ioc_;
    const config& cfg_;
    const std::string address_;
    const std::uint16_t port_;
    const bool tls_;
    host_metrics& metrics_;
    on_connection on_connection_;
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer pause_;
    std::shared_ptr<connection_slot::counts> counts_;
    throttled_log fd_log_, limit_log_, per_ip_log_;
    bool stopped_ = false;  // only on strand_
};

}  // namespace aqd
