// The slow-client load of issue 7, for tests and the load program: one principal's uploads that
// trickle their body a byte a second, and downloads that stop reading after the response head.
//
//   aqt::slow_clients load(gw.port(), gw.bearer("alice"), "/v1/files/" + id + "/content", 200, 200);
//   ... measure what other clients see ...
//
// Every connection is made (and every download's 200 head read) before the constructor returns;
// a thread then sends one byte per second on every upload until the object is destroyed.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace aqt {

namespace raw {
class connection;
}

class slow_clients {
public:
    slow_clients(unsigned short port, const std::string& bearer, const std::string& download_target, int uploads,
                 int downloads);
    ~slow_clients();
    slow_clients(const slow_clients&) = delete;
    slow_clients& operator=(const slow_clients&) = delete;

    // Downloads whose 200 head arrived (all, once constructed).
    int downloads_started() const noexcept { return downloads_started_; }
    // Uploads the server has not closed or answered so far.
    int uploads_pending() const;
    // Bytes sent so far by all uploads together (after their heads).
    long long upload_bytes_sent() const noexcept { return trickled_; }

private:
    void trickle();

    std::vector<std::unique_ptr<raw::connection>> uploads_, downloads_;
    int downloads_started_ = 0;
    std::atomic<long long> trickled_{0};
    std::atomic<bool> stop_{false};
    std::vector<char> closed_;  // per upload; written by the trickle thread only
    std::thread thread_;
};

}  // namespace aqt
