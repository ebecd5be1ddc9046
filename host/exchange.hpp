// One HTTP request in flight between the network and a handler thread.
//
// The connection (I/O thread) and the handler (worker thread) never touch each other's state:
// they meet here, under one mutex. The body flows through a bounded queue: the connection stops
// reading the socket while the queue is full, so a slow handler slows the client down instead of
// filling memory. The response flows the other way through a second bounded queue, on which the
// handler blocks while the client reads slowly. Either side learns about the other's progress
// through the owner's wake(), which the connection turns into a post to its own executor.
//
// Deliberately free of Beast/Asio: host_api.cpp and the tests include it.
#pragma once

#include "aqueduct/abi.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The host completes the ABI's opaque request type: an aq_request* handed to a plugin is an
// exchange, so no lookup table is needed to find one from the other.
struct aq_request {};

namespace aqd {

struct principal;

class exchange : public aq_request {
public:
    // The connection side. wake() may be called from any thread and must not block.
    struct owner {
        virtual ~owner() = default;
        virtual void wake() = 0;
    };

    using header_list = std::vector<std::pair<std::string, std::string>>;

    // What the connection knows before the handler starts; immutable afterwards.
    struct request_head {
        std::string method;
        std::string path;   // as sent, without the query
        std::string query;  // without '?'
        std::string request_id;
        header_list headers;
        header_list params;
        const principal* who = nullptr;
        std::int64_t content_length = 0;  // -1: chunked
        std::uint64_t max_body_bytes = 0;
    };

    // One piece of the response, in the order the connection must write them.
    struct outbound {
        enum kind_t { complete, head, chunk, end } kind = complete;
        int status = 0;
        header_list headers;
        std::string data;              // complete: body; chunk: bytes
        std::int64_t content_length = -1;  // head: -1 means chunked
    };

    // Holds its owner (the connection) until the handler returned and the connection let go of
    // the exchange: a handler doing database work keeps its connection alive.
    exchange(request_head head, std::shared_ptr<owner> owner, std::size_t body_queue_bytes,
             std::size_t response_queue_bytes);

    const request_head& head() const noexcept { return head_; }
    const aq_principal* abi_principal() const noexcept { return head_.who ? &abi_principal_ : nullptr; }

    // ---- body, connection side -------------------------------------------------------------
    // True while the queue has room and the body has neither ended nor failed.
    bool wants_body() const;
    void push_body(std::string_view bytes);
    void finish_body();
    // The body cannot be completed (client gone, limit exceeded, timeout).
    void fail_body(aq_status why);

    // ---- body, handler side ----------------------------------------------------------------
    std::int64_t read_body(void* buf, std::size_t cap);

    // ---- response, handler side ------------------------------------------------------------
    aq_status respond(int status, header_list headers, std::string body);
    aq_status begin(int status, header_list headers, std::int64_t content_length);
    aq_status write(std::string_view chunk);
    aq_status end();
    // The handler returned. If it never answered, a 500 is queued; if it left a streamed
    // response unfinished, the connection must be aborted (aborted() says so).
    void handler_returned();

    // ---- response, connection side ---------------------------------------------------------
    bool pop(outbound& item);
    bool handler_done() const;
    bool aborted() const;
    // The client is gone: every blocked or later handler call returns AQ_ERR_DISCONNECTED.
    void disconnect();

private:
    enum class response_state { none, complete, streaming, ended };
    void wake_owner();

    request_head head_;
    aq_principal abi_principal_{};
    std::shared_ptr<owner> owner_;
    const std::size_t body_limit_;
    const std::size_t response_limit_;

    mutable std::mutex mutex_;
    std::condition_variable body_ready_;
    std::condition_variable response_room_;

    std::deque<std::string> body_;
    std::size_t body_queued_ = 0;
    std::size_t body_offset_ = 0;  // consumed bytes of body_.front()
    bool body_ended_ = false;
    aq_status body_error_ = AQ_OK;

    std::deque<outbound> out_;
    std::size_t out_queued_ = 0;
    response_state state_ = response_state::none;
    bool handler_done_ = false;
    bool aborted_ = false;
    bool disconnected_ = false;
};

}  // namespace aqd
