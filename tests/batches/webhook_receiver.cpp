#include "webhook_receiver.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <mutex>
#include <thread>

namespace aqt {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct webhook_receiver::impl {
    net::io_context io;
    tcp::acceptor acceptor{io};
    std::thread thread;
    mutable std::mutex mu;
    std::vector<webhook_delivery> got;
    int failing = 0;

    explicit impl(unsigned short port) {
        tcp::endpoint at(net::ip::make_address("127.0.0.1"), port);
        acceptor.open(at.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(at);
        acceptor.listen();
        thread = std::thread([this] { serve(); });
    }

    ~impl() {
        // close() does not wake an accept() blocked in another thread; shutdown() of the
        // listening socket does (Linux), and accept() then fails.
        ::shutdown(acceptor.native_handle(), SHUT_RDWR);
        if (thread.joinable()) thread.join();
        boost::system::error_code ec;
        acceptor.close(ec);
        if (thread.joinable()) thread.join();
    }

    // One connection at a time, one request each (answered with "Connection: close"), so that
    // stopping never waits for a client's idle keep-alive connection.
    void serve() {
        for (;;) {
            tcp::socket s(io);
            boost::system::error_code ec;
            acceptor.accept(s, ec);
            if (ec) return;  // closed
            beast::flat_buffer buf;
            {
                http::request<http::string_body> req;
                http::read(s, buf, req, ec);
                if (ec) continue;
                webhook_delivery d;
                d.path = std::string(req.target());
                d.content_type = std::string(req[http::field::content_type]);
                d.id = std::string(req["webhook-id"]);
                d.timestamp = std::string(req["webhook-timestamp"]);
                d.signature = std::string(req["webhook-signature"]);
                d.body = req.body();
                {
                    std::lock_guard lock(mu);
                    d.answered = failing > 0 ? (--failing, 500) : 200;
                    got.push_back(d);
                }
                http::response<http::string_body> res{static_cast<http::status>(d.answered), 11};
                res.body() = d.answered == 200 ? "ok" : "not now";
                res.keep_alive(false);
                res.prepare_payload();
                http::write(s, res, ec);
            }
        }
    }
};

webhook_receiver::webhook_receiver(unsigned short port) : impl_(std::make_unique<impl>(port)) {}
webhook_receiver::~webhook_receiver() = default;

unsigned short webhook_receiver::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }
std::string webhook_receiver::url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/hooks"; }

void webhook_receiver::fail_next(int n) {
    std::lock_guard lock(impl_->mu);
    impl_->failing = n;
}

std::vector<webhook_delivery> webhook_receiver::deliveries() const {
    std::lock_guard lock(impl_->mu);
    return impl_->got;
}

}  // namespace aqt
