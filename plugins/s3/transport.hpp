// The HTTP/1.1 side of the S3 client: a pool of keep-alive connections (plain TCP, or TLS with
// certificate and host name verification) to one endpoint, and one blocking exchange at a time
// per connection, with request and response bodies streamed in pieces.
//
// Blocking, for handler and job threads, yet with timeouts: each connection owns a small
// io_context that the calling thread runs for the duration of one exchange, so every connect,
// write and read has a deadline (Beast's tcp_stream), and no thread is started. Connections are
// shared by threads through the pool: a thread takes an idle one (or opens one), uses it alone
// for one exchange, and gives it back when the response was read to its end and the server
// keeps it open. Connections idle longer than idle_keepalive are closed instead of reused (S3
// servers drop idle connections after a few seconds; a reused dead one costs a failed attempt).
//
// `Expect: 100-continue` (when the request asks for it): the body is sent only after the server's
// 100; a final answer instead (403, 503) is read and the body never sent, so an upload that will
// be refused costs one round trip, not its size.
//
// One exchange is one attempt: retrying is the client's decision. A failure to talk to the
// server at all throws transport_failure; an exception thrown by a body callback propagates
// unchanged. Either way the connection is discarded. No Beast or Asio in this header:
// transport.cpp is the only translation unit that includes them.
#pragma once

#include "endpoint.hpp"
#include "sigv4.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aq::s3 {

struct transport_config {
    endpoint target;
    std::string ca_file;                                   // extra PEM trust anchors; the system store is always used
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds io_timeout{30000};           // longest wait for any one read or write
    std::chrono::milliseconds idle_keepalive{4000};
    std::size_t max_idle_connections = 16;
};

struct http_request {
    std::string method;                 // "GET"
    std::string target;                 // encoded path and query, exactly as signed
    header_list headers;                // Host, Authorization, x-amz-*, Range, ... (not Content-Length)
    std::uint64_t content_length = 0;
    bool has_body = false;              // send Content-Length (PUT/POST), even 0
    std::string_view body;              // the whole body, or
    std::function<std::size_t(char*, std::size_t)> pull;  // pieces of it, exactly content_length bytes in all
    // The length is not known beforehand: the body goes with `Transfer-Encoding: chunked`
    // instead of a Content-Length, one chunk per piece `pull` gives, until it gives 0.
    bool chunked = false;
    bool expect_continue = false;
    bool head = false;                  // the response has no body whatever its headers say
};

struct http_response {
    int status = 0;
    header_list headers;                // names lowercase
    std::string body;                   // collected (errors, XML); empty when the body went to the sink

    // The first value of a header (name lowercase), or "".
    std::string header(std::string_view name) const;
};

// Where a streamed response body goes.
struct body_receiver {
    std::function<void(int status, const header_list& headers)> head;  // before the first piece
    std::function<void(std::string_view piece)> piece;
};

// A failure to exchange with the server (no complete answer).
class transport_failure : public std::runtime_error {
public:
    enum class stage { connect, tls, send, receive };
    struct details {
        stage where = stage::connect;
        bool timed_out = false;
        bool reused_connection = false;  // the connection had served an earlier request
        bool answered = false;           // some of a response had arrived before the failure
        bool certificate_rejected = false;  // the server's TLS certificate did not verify
        bool malformed = false;          // the server sent something that is not valid HTTP, or too much
    };
    transport_failure(const std::string& what, details d) : std::runtime_error(what), details_(d) {}
    const details& info() const noexcept { return details_; }

private:
    details details_;
};

class transport {
public:
    // Throws std::runtime_error when ca_file cannot be loaded.
    explicit transport(transport_config cfg);
    ~transport();
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;

    // Sends `req` and reads the answer. With a receiver, a 2xx answer's status and headers go to
    // receiver->head and then its body to receiver->piece, in pieces of at most 256 KiB (so a
    // download needs one buffer, not the object). Other bodies are collected into response.body:
    // a 2xx one larger than `max_collect` is a transport_failure, an error one is cut there.
    // Thread: any.
    http_response exchange(const http_request& req, const body_receiver* receiver, std::size_t max_collect);

    // TCP connections opened so far.
    std::uint64_t connections_opened() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace aq::s3
