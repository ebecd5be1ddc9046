// The HTTP client that sends batch lines to OpenAI-compatible upstreams.
//
// Asynchronous (Boost.Beast on C++20 coroutines) on one I/O thread owned by the client, so a
// few hundred requests in flight cost a few hundred sockets, not threads. Per upstream: at most
// max_concurrency requests at once (the rest wait in a queue), a pool of keep-alive
// connections, one deadline of timeout_seconds for the whole exchange. https uses OpenSSL with
// the system's trust store, SNI and host name verification.
//
// One call is one HTTP attempt; the runner decides about retries, because attempts and the time
// of the next one are stored durably. The only retry here is a request whose reused keep-alive
// connection turned out to be closed before any byte of a response arrived.
//
// No Beast or Asio in this header: upstream.cpp is the only translation unit that pays for them.
#pragma once

#include "config.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace batches {

struct upstream_reply {
    bool started = true;             // false: the start check refused, nothing was sent
    int status = 0;                  // HTTP status; 0 when no answer arrived
    std::string body;                // the response body as received
    std::string request_id;          // the upstream's x-request-id, if any
    // The rate-limit headers as received (absent: nullopt); retry_after.hpp reads them.
    std::optional<std::string> retry_after, retry_after_ms;
    // When status == 0: timeout | connection_error | invalid_response, or when !started the
    // code the start check returned.
    std::string error_code;
    std::string error_message;
};

// Asked on the client's I/O thread right before a request is sent: nullptr to send it, else
// the error code of not sending it (the request is then answered with started == false).
using start_check = std::function<const char*()>;

class upstream_client {
public:
    explicit upstream_client(const std::vector<upstream_config>& upstreams);
    ~upstream_client();  // stops the I/O thread; callbacks of unfinished requests never run
    upstream_client(const upstream_client&) = delete;
    upstream_client& operator=(const upstream_client&) = delete;

    // Sends `body` (JSON) as POST base_url + path of upstream number `upstream` (config order),
    // once `check` allows it: a request waits in the upstream's queue until a connection slot
    // is free, and whether it should still go is only known then (its batch may have been
    // cancelled meanwhile). `request_id` goes out as x-request-id (empty: none), so the
    // upstream's logs can be matched with the batch output. `done` runs exactly once on the
    // client's I/O thread, unless the client is destroyed first. Thread: any.
    void send(std::size_t upstream, std::string path, std::string body, std::string request_id, start_check check,
              std::function<void(upstream_reply)> done);
    // The same, with header fields of the caller's own (a webhook's signature), each sent as
    // given: `headers` must hold valid field names and values (no CR, LF or NUL).
    void send(std::size_t upstream, std::string path, std::string body,
              std::vector<std::pair<std::string, std::string>> headers, start_check check,
              std::function<void(upstream_reply)> done);

    // Requests handed to `upstream` and not yet answered (queued or in flight). Thread: any.
    std::size_t load(std::size_t upstream) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace batches
