#include "exchange.hpp"

#include "auth.hpp"
#include "body_spool.hpp"
#include "log.hpp"
#include "worker_pool.hpp"

#include <aqueduct/plugin.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace aqd {

exchange::exchange(request_head head, std::shared_ptr<owner> owner, std::shared_ptr<body_spool> body,
                   worker_pool& pool, admission::ticket ticket)
    : head_(std::move(head)), owner_(std::move(owner)), body_(std::move(body)), pool_(pool),
      ticket_(std::move(ticket)) {
    if (head_.who) {
        abi_principal_.struct_size = sizeof abi_principal_;
        abi_principal_.token_name = aq::to_aq(head_.who->token_name);
        abi_principal_.user = aq::to_aq(head_.who->user);
        abi_principal_.team = aq::to_aq(head_.who->team);
    }
}

exchange::~exchange() {
    // Nobody else holds the exchange any more, so no read is running: a source that was never
    // started (or stopped early) is released here.
    if (have_source_ && !released_ && source_.release) {
        released_ = true;
        source_.release(source_.ctx);
    }
}

void exchange::wake_owner() { owner_->wake(); }

void exchange::log_problem(std::string_view what) const {
    // The request's id is on the line already: this runs on the handler's thread or a source's
    // reader, both inside the request's log::request_scope.
    log::error("http", "plugin " + head_.plugin + ": " + std::string(what) + " (" + head_.method + " " + head_.path + ")");
}

// ---- body ------------------------------------------------------------------------------------

std::int64_t exchange::read_body(void* buf, std::size_t cap) {
    if (!body_ || cap == 0) return 0;
    std::int64_t n = body_->read(buf, cap);
    // A streaming body the connection gave up on: the client went away or was cut off (the
    // connection logged why).
    if (n == -ECONNABORTED) return -static_cast<std::int64_t>(AQ_ERR_DISCONNECTED);
    if (n < 0) {
        log_problem("cannot read the spooled request body: " + std::string(std::strerror(static_cast<int>(-n))));
        return -static_cast<std::int64_t>(AQ_ERR_INTERNAL);
    }
    return n;
}

// ---- response, handler side ------------------------------------------------------------------

void exchange::answer_500_locked(std::string message) {
    state_ = response_state::complete;
    outbound item;
    item.kind = outbound::complete;
    item.status = 500;
    item.headers = {{"Content-Type", "application/json"}};
    item.data = aq::error_envelope(message, "server_error");
    out_.push_back(std::move(item));
}

void exchange::refuse(std::string_view why) {
    log_problem("response refused: " + std::string(why));
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (disconnected_) return;
        if (state_ == response_state::none) {
            answer_500_locked("The server had an error while processing your request.");
            wake = true;
        } else if (state_ == response_state::streaming) {
            aborted_ = true;  // the headers are out; the only honest end is a cut connection
            state_ = response_state::ended;
            wake = true;
        }
    }
    room_.notify_all();
    if (wake) wake_owner();
}

// The first piece of every response: its status and header fields.
exchange::outbound exchange::first_piece(outbound::kind_t kind, int status, header_list headers) {
    outbound item;
    item.kind = kind;
    item.status = status;
    item.headers = std::move(headers);
    return item;
}

aq_status exchange::start(response_state next, outbound item, std::int64_t declared) {
    {
        std::lock_guard lock(mutex_);
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        if (state_ != response_state::none) return AQ_ERR_STATE;
        state_ = next;
        declared_ = declared;
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

aq_status exchange::respond(int status, header_list headers, std::string body) {
    outbound item = first_piece(outbound::complete, status, std::move(headers));
    item.data = std::move(body);
    return start(response_state::complete, std::move(item), -1);
}

aq_status exchange::begin(int status, header_list headers, std::int64_t content_length) {
    outbound item = first_piece(outbound::head, status, std::move(headers));
    item.content_length = content_length;
    return start(response_state::streaming, std::move(item), content_length);
}

aq_status exchange::write(std::string_view chunk) {
    if (chunk.empty()) return AQ_OK;
    {
        std::unique_lock lock(mutex_);
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        if (state_ != response_state::streaming) return AQ_ERR_STATE;
        if (declared_ >= 0 && produced_ + chunk.size() > static_cast<std::uint64_t>(declared_)) {
            lock.unlock();
            refuse("write_response past the declared Content-Length of " + std::to_string(declared_) + " bytes");
            return AQ_ERR_INVALID;
        }
        // Block while the client is behind: memory per response stays near queue_bytes.
        room_.wait(lock, [this] { return disconnected_ || aborted_ || out_queued_ < queue_bytes; });
        if (disconnected_ || aborted_) return AQ_ERR_DISCONNECTED;
        outbound item;
        item.kind = outbound::chunk;
        item.data.assign(chunk);
        out_queued_ += chunk.size();
        produced_ += chunk.size();
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

aq_status exchange::end() {
    {
        std::unique_lock lock(mutex_);
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        if (state_ != response_state::streaming) return AQ_ERR_STATE;
        if (declared_ >= 0 && produced_ != static_cast<std::uint64_t>(declared_)) {
            lock.unlock();
            refuse("end_response after " + std::to_string(produced_) + " of the declared " + std::to_string(declared_) +
                   " bytes");
            return AQ_ERR_INVALID;
        }
        state_ = response_state::ended;
        outbound item;
        item.kind = outbound::end;
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

aq_status exchange::respond_source(int status, header_list headers, std::int64_t content_length,
                                   const aq_body_source& source) {
    {
        // The host owns the source from here on: refused or not, it is released exactly once
        // (by the destructor when nothing else does). A second source is given back at once.
        std::lock_guard lock(mutex_);
        if (have_source_) {
            if (source.release) source.release(source.ctx);
            return AQ_ERR_STATE;
        }
        source_ = source;
        have_source_ = true;
    }
    outbound item = first_piece(outbound::head, status, std::move(headers));
    item.content_length = content_length;
    return start(response_state::pulling, std::move(item), content_length);
}

aq_status exchange::respond_file(int status, header_list headers, unique_fd fd, std::uint64_t offset,
                                 std::uint64_t length) {
    outbound item = first_piece(outbound::file, status, std::move(headers));
    item.fd = std::move(fd);
    item.offset = offset;
    item.length = length;
    return start(response_state::file, std::move(item), static_cast<std::int64_t>(length));
}

void exchange::handler_returned() {
    // Nobody reads the body any more: its memory, file and spool budget go back now, not when
    // a long response has been written.
    body_.reset();
    bool pull_now = false, release_now = false;
    {
        std::lock_guard lock(mutex_);
        handler_done_ = true;
        if (state_ == response_state::none) {
            // The SDK's trampoline always answers; a plugin written against abi.h directly may
            // not. The client still gets a well-formed answer.
            answer_500_locked("The handler returned without a response.");
        } else if (state_ == response_state::streaming) {
            aborted_ = true;  // the length or chunk framing can't be completed honestly
        }
        pull_now = wants_piece_locked();
        if (pull_now) pulling_ = true;
        release_now = have_source_ && !released_ && !pulling_ && (disconnected_ || state_ != response_state::pulling);
    }
    if (release_now) release_source();
    wake_owner();
    // The first piece is read right here: this worker is free anyway, and the connection can
    // start writing without another trip through the queue.
    if (pull_now) pull();
}

// ---- pulled responses ----------------------------------------------------------------------

bool exchange::wants_piece_locked() const {
    return state_ == response_state::pulling && handler_done_ && !pulling_ && !disconnected_ && !aborted_ &&
           out_queued_ < queue_bytes;
}

void exchange::pull() {
    for (;;) {
        std::size_t cap;
        {
            std::lock_guard lock(mutex_);
            if (disconnected_ || state_ != response_state::pulling) {
                pulling_ = false;
                break;
            }
            cap = source_piece_bytes;
            if (declared_ >= 0) cap = static_cast<std::size_t>(std::min<std::uint64_t>(cap, static_cast<std::uint64_t>(declared_) - produced_));
        }
        std::string piece;
        std::int64_t n = 0;
        if (cap > 0) {
            piece.resize(cap);
            n = source_.read(source_.ctx, piece.data(), cap);
            if (n > static_cast<std::int64_t>(cap)) n = -static_cast<std::int64_t>(AQ_ERR_INVALID);
        }
        std::string problem;
        bool more = false;
        {
            std::lock_guard lock(mutex_);
            pulling_ = false;
            if (disconnected_) break;
            if (n < 0) {
                problem = "body source failed with status " + std::to_string(-n) + "; response aborted";
                aborted_ = true;
                state_ = response_state::ended;
            } else if (n == 0) {
                if (declared_ >= 0 && produced_ < static_cast<std::uint64_t>(declared_)) {
                    problem = "body source ended after " + std::to_string(produced_) + " of the declared " +
                              std::to_string(declared_) + " bytes; response aborted";
                    aborted_ = true;
                } else {
                    outbound item;
                    item.kind = outbound::end;
                    out_.push_back(std::move(item));
                }
                state_ = response_state::ended;
            } else {
                piece.resize(static_cast<std::size_t>(n));
                produced_ += static_cast<std::uint64_t>(n);
                out_queued_ += piece.size();
                outbound item;
                item.kind = outbound::chunk;
                item.data = std::move(piece);
                out_.push_back(std::move(item));
                if (declared_ >= 0 && produced_ == static_cast<std::uint64_t>(declared_)) {
                    outbound last;
                    last.kind = outbound::end;
                    out_.push_back(std::move(last));
                    state_ = response_state::ended;
                }
            }
            more = wants_piece_locked();
            if (more) pulling_ = true;
        }
        if (!problem.empty()) log_problem(problem);
        wake_owner();
        if (!more) break;
    }
    bool release_now;
    {
        std::lock_guard lock(mutex_);
        release_now = !pulling_ && !released_ && (disconnected_ || state_ != response_state::pulling);
    }
    if (release_now) release_source();
}

void exchange::release_source() {
    {
        std::lock_guard lock(mutex_);
        if (released_ || !have_source_) return;
        released_ = true;
    }
    if (source_.release) source_.release(source_.ctx);
}

// ---- connection side -----------------------------------------------------------------------

bool exchange::pop(outbound& item) {
    bool pull_later = false;
    {
        std::lock_guard lock(mutex_);
        if (out_.empty()) return false;
        item = std::move(out_.front());
        out_.pop_front();
        if (item.kind == outbound::chunk) out_queued_ -= item.data.size();
        pull_later = wants_piece_locked();
        if (pull_later) pulling_ = true;
    }
    room_.notify_one();
    if (pull_later)
        pool_.post([self = shared_from_this()] {
            log::request_scope scope(self->head_.request_id);
            self->pull();
        });
    return true;
}

bool exchange::handler_done() const {
    std::lock_guard lock(mutex_);
    return handler_done_;
}

bool exchange::aborted() const {
    std::lock_guard lock(mutex_);
    return aborted_;
}

void exchange::disconnect() {
    bool release_now;
    {
        std::lock_guard lock(mutex_);
        disconnected_ = true;
        out_.clear();
        out_queued_ = 0;
        release_now = have_source_ && handler_done_ && !pulling_ && !released_;
    }
    room_.notify_all();
    if (release_now) release_source();
}

}  // namespace aqd
