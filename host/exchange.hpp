// One HTTP request in flight between the connection and a handler thread.
//
// The connection (I/O thread) and the handler (worker thread) never touch each other's state:
// they meet here, under one mutex. The request body is read from its spool, which the
// connection fills: usually complete before the exchange exists, while it still arrives for a
// large body that streams (connection.hpp); a body the client abandons then reads as a
// disconnect. The response flows through a
// bounded outbound queue that the connection drains, in one of four forms:
//
//  - complete: status, headers and body at once;
//  - streamed (ABI 1.0): begin, then write() blocks the handler while the queue is full, end;
//    the only form in which a slow client holds a thread, bounded by the minimum rate;
//  - pulled (ABI 1.1 respond_source): after the handler returned, a worker reads the next piece
//    from the plugin's source only when the queue has room. A stalled client stops the reads:
//    it holds the pieces in the queue, no thread;
//  - file (ABI 1.1 respond_file): the connection sends the file itself with sendfile(2).
//
// Either side learns about the other's progress through the owner's wake(), which the
// connection turns into a post to its own executor. Deliberately free of Beast/Asio:
// host_api.cpp includes it.
#pragma once

#include "admission.hpp"
#include "aqueduct/abi.h"
#include "header_list.hpp"
#include "unique_fd.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

// The host completes the ABI's opaque request type: an aq_request* handed to a plugin is an
// exchange, so no lookup table is needed to find one from the other.
struct aq_request {};

namespace aqd {

struct principal;
class body_spool;
class worker_pool;

class exchange : public aq_request, public std::enable_shared_from_this<exchange> {
public:
    // The connection side. wake() may be called from any thread and must not block.
    struct owner {
        virtual ~owner() = default;
        virtual void wake() = 0;
    };

    // What the connection knows before the handler starts; immutable afterwards.
    struct request_head {
        std::string method;
        std::string path;   // as sent, without the query
        std::string query;  // without '?'
        std::string request_id;
        header_list headers;
        header_list params;
        std::shared_ptr<const principal> who;  // held: a reload cannot take it from a running request
        std::int64_t content_length = 0;  // -1: chunked
        std::string plugin;               // the route's plugin, for log lines
    };

    // One piece of the response, in the order the connection must write them.
    struct outbound {
        enum kind_t { complete, head, chunk, end, file } kind = complete;
        int status = 0;
        header_list headers;
        std::string data;                  // complete: body; chunk: bytes
        std::int64_t content_length = -1;  // head: -1 means unknown length
        unique_fd fd;                      // file
        std::uint64_t offset = 0, length = 0;
    };

    // How much of a response may wait in memory, and the size of a piece pulled from a source.
    static constexpr std::size_t queue_bytes = 128 * 1024;
    static constexpr std::size_t source_piece_bytes = 64 * 1024;

    // Holds its owner (the connection) until the handler returned and the connection let go of
    // the exchange: a handler doing database work keeps its connection alive. `body` may be
    // null (no body). The ticket is the request's place under its principal's limit.
    exchange(request_head head, std::shared_ptr<owner> owner, std::shared_ptr<body_spool> body, worker_pool& pool,
             admission::ticket ticket);
    ~exchange();

    const request_head& head() const noexcept { return head_; }
    const aq_principal* abi_principal() const noexcept { return head_.who ? &abi_principal_ : nullptr; }

    // ---- handler side ----------------------------------------------------------------------
    std::int64_t read_body(void* buf, std::size_t cap);
    aq_status respond(int status, header_list headers, std::string body);
    aq_status begin(int status, header_list headers, std::int64_t content_length);
    aq_status write(std::string_view chunk);
    aq_status end();
    // Takes the source in every case (release is called exactly once).
    aq_status respond_source(int status, header_list headers, std::int64_t content_length,
                             const aq_body_source& source);
    aq_status respond_file(int status, header_list headers, unique_fd fd, std::uint64_t offset,
                           std::uint64_t length);
    // A response the rules refuse: logged, and answered with a 500 if nothing was sent yet.
    void refuse(std::string_view why);
    // The handler returned. If it never answered, a 500 is queued; if it left a streamed
    // response unfinished, the connection must be aborted (aborted() says so). A source starts
    // being read now, on this thread.
    void handler_returned();

    // ---- connection side -------------------------------------------------------------------
    bool pop(outbound& item);
    bool handler_done() const;
    bool aborted() const;
    // The client is gone: every blocked or later handler call returns AQ_ERR_DISCONNECTED, and
    // a source is released.
    void disconnect();

private:
    enum class response_state { none, complete, streaming, pulling, file, ended };

    static outbound first_piece(outbound::kind_t kind, int status, header_list headers);
    // Queues the first piece of the response if none began and the client is still there.
    aq_status start(response_state next, outbound item, std::int64_t declared);
    void wake_owner();
    void answer_500_locked(std::string message);
    bool wants_piece_locked() const;
    void pull();             // reads pieces from the source while there is room (worker thread)
    void release_source();   // once, outside the lock
    void log_problem(std::string_view what) const;

    request_head head_;
    aq_principal abi_principal_{};
    std::shared_ptr<owner> owner_;
    std::shared_ptr<body_spool> body_;
    worker_pool& pool_;
    admission::ticket ticket_;

    mutable std::mutex mutex_;
    std::condition_variable room_;

    std::deque<outbound> out_;
    std::size_t out_queued_ = 0;
    response_state state_ = response_state::none;
    std::int64_t declared_ = -1;   // the streamed/pulled response's length, -1 unknown
    std::uint64_t produced_ = 0;   // body bytes queued so far
    bool handler_done_ = false;
    bool aborted_ = false;
    bool disconnected_ = false;

    aq_body_source source_{};
    bool have_source_ = false;
    bool pulling_ = false;   // a worker is inside pull()
    bool released_ = false;
};

}  // namespace aqd
