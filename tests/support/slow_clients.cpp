#include "slow_clients.hpp"

#include "multipart.hpp"
#include "raw_connection.hpp"

#include <chrono>
#include <stdexcept>

#include <poll.h>
#include <sys/socket.h>

namespace aqt {

using namespace std::chrono_literals;

slow_clients::slow_clients(unsigned short port, const std::string& bearer, const std::string& download_target,
                           int uploads, int downloads) {
    // An upload of a small JSONL file whose body will take a day at a byte a second.
    multipart form;
    form.field("purpose", "batch").file("file", "slow.jsonl", std::string(100000, 'x'));
    const std::string head = "POST /v1/files HTTP/1.1\r\nHost: t\r\nAuthorization: " + bearer +
                             "\r\nContent-Type: " + form.content_type() +
                             "\r\nContent-Length: " + std::to_string(form.body().size()) + "\r\n\r\n";
    for (int i = 0; i < uploads; ++i) {
        auto conn = std::make_unique<raw::connection>(port);
        if (!conn->send(head)) throw std::runtime_error("slow_clients: upload head refused");
        uploads_.push_back(std::move(conn));
    }
    closed_.assign(uploads_.size(), 0);
    // A small receive buffer, so that the server's side stalls soon after the head.
    const std::string get = "GET " + download_target + " HTTP/1.1\r\nHost: t\r\nAuthorization: " + bearer + "\r\n\r\n";
    for (int i = 0; i < downloads; ++i) {
        auto conn = std::make_unique<raw::connection>(port, raw::connection_options{4096, ""});
        if (!conn->send(get)) throw std::runtime_error("slow_clients: download request refused");
        auto r = conn->read_until("\r\n\r\n", 30s);
        if (r.how != raw::ending::data || r.data.rfind("HTTP/1.1 200 ", 0) != 0)
            throw std::runtime_error("slow_clients: download " + std::to_string(i) + " did not start: " +
                                     r.data.substr(0, 300));
        ++downloads_started_;
        downloads_.push_back(std::move(conn));
    }
    thread_ = std::thread([this] { trickle(); });
}

slow_clients::~slow_clients() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

int slow_clients::uploads_pending() const {
    int n = 0;
    for (auto& c : uploads_) {
        // Readable means an answer or a close came: the upload is no longer pending.
        pollfd p{c->fd(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 0) ++n;
    }
    return n;
}

void slow_clients::trickle() {
    while (!stop_) {
        const auto next = std::chrono::steady_clock::now() + 1s;
        for (std::size_t i = 0; i < uploads_.size() && !stop_; ++i) {
            if (closed_[i]) continue;
            if (::send(uploads_[i]->fd(), "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
                ++trickled_;
            else
                closed_[i] = 1;
        }
        while (!stop_ && std::chrono::steady_clock::now() < next) std::this_thread::sleep_for(20ms);
    }
}

}  // namespace aqt
