// A TCP proxy in front of the real S3 server that injects faults on command, to show the
// client's retries against the real thing: a connection is forwarded byte for byte unless a
// fault is armed, and each armed fault is used up by one connection.
//
//   fault_proxy proxy(upstream_port);
//   proxy.answer_next(2, slow_down_response());   // two 503 SlowDown, then the real server
//   cfg.endpoint = "http://127.0.0.1:" + std::to_string(proxy.port());
//
// Faults act on a connection's first request, after its header arrived (so the client has
// committed to the request): answer with canned bytes and close, or close without a word. Cuts
// act on a forwarded connection: after so many bytes of request (mid-upload) or of response
// (mid-download) both sides are closed. One thread accepts; each connection has its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace aqt {

class fault_proxy {
public:
    explicit fault_proxy(unsigned short upstream_port);
    ~fault_proxy();
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    unsigned short port() const noexcept;

    // The next `n` connections get `raw_response` to their first request, then are closed.
    void answer_next(int n, std::string raw_response);
    // The next `n` connections are closed as soon as their first request's header arrived.
    void drop_next(int n);
    // The next `n` connections get no answer at all: held open until the client gives up.
    void stall_next(int n);
    // The next forwarded connection is cut after `bytes` bytes of request body/headers went up.
    void cut_request_after(std::uint64_t bytes);
    // The next forwarded connection is cut after `bytes` bytes of response came down.
    void cut_response_after(std::uint64_t bytes);
    // The next forwarded connection has the request byte at `offset` (headers included) flipped.
    void corrupt_request_at(std::uint64_t offset);
    // Closes every open connection now (as a server dropping idle keep-alive connections does).
    void close_all();

    int connections() const noexcept;     // accepted so far
    int faults() const noexcept;          // answers, drops and cuts delivered so far

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A 503 SlowDown answer as S3 sends it, with Connection: close.
std::string slow_down_response();

}  // namespace aqt
