#include "listener.hpp"

#include "config.hpp"
#include "host_metrics.hpp"
#include "log.hpp"
#include "response_head.hpp"

#include <aqueduct/plugin.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>

namespace aqd {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct connection_slot::counts {
    struct key_hash {
        std::size_t operator()(const address_key& k) const noexcept {
            std::size_t h = 1469598103934665603ull;
            for (unsigned char c : k) h = (h ^ c) * 1099511628211ull;
            return h;
        }
    };
    std::mutex mutex;
    std::uint32_t total = 0;
    // Only addresses with open connections have an entry.
    std::unordered_map<address_key, std::uint32_t, key_hash> per_ip;
};

std::shared_ptr<connection_slot::counts> connection_slot::make_counts() { return std::make_shared<counts>(); }

connection_slot::connection_slot(connection_slot&& o) noexcept : counts_(std::move(o.counts_)), key_(o.key_) {}

connection_slot& connection_slot::operator=(connection_slot&& o) noexcept {
    if (this != &o) {
        release();
        counts_ = std::move(o.counts_);
        key_ = o.key_;
    }
    return *this;
}

void connection_slot::release() noexcept {
    if (!counts_) return;
    {
        std::lock_guard lock(counts_->mutex);
        --counts_->total;
        auto it = counts_->per_ip.find(key_);
        if (it != counts_->per_ip.end() && --it->second == 0) counts_->per_ip.erase(it);
    }
    counts_.reset();
}

namespace {

connection_slot::address_key key_of(const asio::ip::address& a) {
    const auto v6 = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()) : a.to_v6();
    return v6.to_bytes();
}

// Accept failures that mean "no resources now": retrying at once fails the same way.
bool out_of_resources(const boost::system::error_code& ec) {
    return ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
           ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

}  // namespace

void listener::throttled_log::note(std::string_view what) {
    const auto now = std::chrono::steady_clock::now();
    if (last != std::chrono::steady_clock::time_point{} && now - last < log_interval) {
        ++suppressed;
        return;
    }
    std::string line(what);
    if (suppressed)
        line += " (and " + std::to_string(suppressed) + " more time(s) in the last " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - last).count()) + " s)";
    log::warn("http", line);
    last = now;
    suppressed = 0;
}

listener::listener(asio::io_context& ioc, const config& cfg, std::string address, std::uint16_t port,
                   std::shared_ptr<connection_slot::counts> counts, bool tls, host_metrics& metrics, on_connection fn)
    : ioc_(ioc), cfg_(cfg), address_(std::move(address)), port_(port), tls_(tls), metrics_(metrics),
      on_connection_(std::move(fn)), strand_(asio::make_strand(ioc)), acceptor_(strand_), pause_(strand_),
      counts_(std::move(counts)) {}

std::string listener::open() {
    try {
        tcp::endpoint endpoint(asio::ip::make_address(address_), port_);
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(asio::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& e) {
        throw std::system_error(e.code(), address_ + ":" + std::to_string(port_));
    }
    auto bound = acceptor_.local_endpoint();
    std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
    return host + ":" + std::to_string(bound.port());
}

void listener::start() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->accept(); });
}

void listener::stop() {
    asio::post(strand_, [self = shared_from_this()] {
        self->stopped_ = true;
        boost::system::error_code ec;
        self->pause_.cancel();
        self->acceptor_.close(ec);
    });
}

std::uint32_t listener::open_connections() const {
    std::lock_guard lock(counts_->mutex);
    return counts_->total;
}

void listener::accept() {
    if (stopped_) return;
    // Each connection gets a strand of its own (several I/O threads may run handlers).
    acceptor_.async_accept(asio::make_strand(ioc_), asio::bind_executor(strand_, [self = shared_from_this()](
                                                                                   boost::system::error_code ec,
                                                                                   tcp::socket socket) {
                               try {
                                   self->on_accept(ec, std::move(socket));
                               } catch (const std::exception& e) {
                                   log::error("http", std::string("accept handler failed: ") + e.what());
                                   self->accept();
                               }
                           }));
}

void listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
        if (out_of_resources(ec)) {
            metrics_.refused_connections.counter({"no_descriptors"}).add(1);
            fd_log_.note("accept failed: " + ec.message() + "; pausing accepts for " +
                         std::to_string(accept_pause.count()) + " ms each time until descriptors free up");
            pause_.expires_after(accept_pause);
            pause_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
                if (wait_ec) return;
                try {
                    self->accept();
                } catch (const std::exception& e) {
                    log::error("http", std::string("accept failed to restart: ") + e.what());
                }
            });
            return;
        }
        // ECONNABORTED and friends: that one client is gone; the next may be fine.
        log::debug("http", "accept failed: " + ec.message());
        return accept();
    }

    boost::system::error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) return accept();  // the client is already gone
    const auto key = key_of(peer.address());
    enum class verdict { ok, too_many, too_many_from_ip } v = verdict::ok;
    {
        std::lock_guard lock(counts_->mutex);
        if (counts_->total >= cfg_.max_connections) {
            v = verdict::too_many;
        } else {
            auto& n = counts_->per_ip[key];
            if (cfg_.max_connections_per_ip && n >= cfg_.max_connections_per_ip) {
                v = verdict::too_many_from_ip;
            } else {
                ++n;
                ++counts_->total;
            }
        }
    }
    switch (v) {
    case verdict::too_many:
        metrics_.refused_connections.counter({"max_connections"}).add(1);
        limit_log_.note("refused a connection: max_connections (" + std::to_string(cfg_.max_connections) +
                        ") are open");
        refuse(socket, "The server has too many open connections. Retry later.");
        break;
    case verdict::too_many_from_ip:
        metrics_.refused_connections.counter({"max_connections_per_ip"}).add(1);
        per_ip_log_.note("refused a connection from " + peer.address().to_string() + ": max_connections_per_ip (" +
                         std::to_string(cfg_.max_connections_per_ip) + ") are open");
        refuse(socket, "Too many open connections from your address. Retry later.");
        break;
    case verdict::ok:
        on_connection_(std::move(socket), connection_slot(counts_, key));
        break;
    }
    accept();
}

void listener::refuse(tcp::socket& socket, std::string_view message) {
    boost::system::error_code ec;
    if (tls_) {
        socket.close(ec);
        return;
    }
    static const header_list headers = {{"Content-Type", "application/json"}, {"retry-after", "1"}};
    const std::string bytes =
        closing_answer(503, headers, aq::error_envelope(message, "server_error", "", "overloaded"));
    // One attempt, never a wait: a fresh socket's send buffer takes a few hundred bytes.
    (void)::send(socket.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
}

}  // namespace aqd
