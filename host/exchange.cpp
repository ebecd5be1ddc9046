#include "exchange.hpp"

#include "auth.hpp"

#include <aqueduct/plugin.hpp>

#include <algorithm>
#include <cstring>

namespace aqd {

exchange::exchange(request_head head, std::shared_ptr<owner> owner, std::size_t body_queue_bytes,
                   std::size_t response_queue_bytes)
    : head_(std::move(head)), owner_(std::move(owner)), body_limit_(body_queue_bytes),
      response_limit_(response_queue_bytes) {
    if (head_.who) {
        abi_principal_.struct_size = sizeof abi_principal_;
        abi_principal_.token_name = aq::to_aq(head_.who->token_name);
        abi_principal_.user = aq::to_aq(head_.who->user);
        abi_principal_.team = aq::to_aq(head_.who->team);
    }
}

void exchange::wake_owner() {
    owner_->wake();
}

// ---- body ------------------------------------------------------------------------------------

bool exchange::wants_body() const {
    std::lock_guard lock(mutex_);
    return !body_ended_ && body_error_ == AQ_OK && body_queued_ < body_limit_ && !disconnected_;
}

void exchange::push_body(std::string_view bytes) {
    if (bytes.empty()) return;
    {
        std::lock_guard lock(mutex_);
        body_.emplace_back(bytes);
        body_queued_ += bytes.size();
    }
    body_ready_.notify_one();
}

void exchange::finish_body() {
    {
        std::lock_guard lock(mutex_);
        body_ended_ = true;
    }
    body_ready_.notify_one();
}

void exchange::fail_body(aq_status why) {
    {
        std::lock_guard lock(mutex_);
        if (body_error_ == AQ_OK) body_error_ = why;
    }
    body_ready_.notify_one();
}

std::int64_t exchange::read_body(void* buf, std::size_t cap) {
    if (cap == 0) return 0;
    bool was_full;
    std::size_t n;
    {
        std::unique_lock lock(mutex_);
        body_ready_.wait(lock, [this] {
            return !body_.empty() || body_ended_ || body_error_ != AQ_OK || disconnected_;
        });
        // Bytes already received are delivered before an error that came after them, except a
        // disconnect: the handler must roll back anyway, so it learns at once.
        if (disconnected_) return -static_cast<std::int64_t>(AQ_ERR_DISCONNECTED);
        if (body_.empty()) {
            if (body_error_ != AQ_OK) return -static_cast<std::int64_t>(body_error_);
            return 0;
        }
        was_full = body_queued_ >= body_limit_;
        n = 0;
        while (n < cap && !body_.empty()) {
            std::string& front = body_.front();
            std::size_t take = std::min(cap - n, front.size() - body_offset_);
            std::memcpy(static_cast<char*>(buf) + n, front.data() + body_offset_, take);
            n += take;
            body_offset_ += take;
            body_queued_ -= take;
            if (body_offset_ == front.size()) {
                body_.pop_front();
                body_offset_ = 0;
            }
        }
    }
    // Resume reading the socket once the queue has room again (only then: no wake per chunk).
    if (was_full) wake_owner();
    return static_cast<std::int64_t>(n);
}

// ---- response, handler side ------------------------------------------------------------------

aq_status exchange::respond(int status, header_list headers, std::string body) {
    {
        std::lock_guard lock(mutex_);
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        if (state_ != response_state::none) return AQ_ERR_STATE;
        state_ = response_state::complete;
        outbound item;
        item.kind = outbound::complete;
        item.status = status;
        item.headers = std::move(headers);
        item.data = std::move(body);
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

aq_status exchange::begin(int status, header_list headers, std::int64_t content_length) {
    {
        std::lock_guard lock(mutex_);
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        if (state_ != response_state::none) return AQ_ERR_STATE;
        state_ = response_state::streaming;
        outbound item;
        item.kind = outbound::head;
        item.status = status;
        item.headers = std::move(headers);
        item.content_length = content_length;
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

aq_status exchange::write(std::string_view chunk) {
    if (chunk.empty()) return AQ_OK;
    {
        std::unique_lock lock(mutex_);
        if (state_ != response_state::streaming) return AQ_ERR_STATE;
        // Block while the client is behind: memory per response stays near response_limit_.
        response_room_.wait(lock, [this] { return disconnected_ || out_queued_ < response_limit_; });
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        outbound item;
        item.kind = outbound::chunk;
        item.data.assign(chunk);
        out_queued_ += chunk.size();
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

aq_status exchange::end() {
    {
        std::lock_guard lock(mutex_);
        if (disconnected_) return AQ_ERR_DISCONNECTED;
        if (state_ != response_state::streaming) return AQ_ERR_STATE;
        state_ = response_state::ended;
        outbound item;
        item.kind = outbound::end;
        out_.push_back(std::move(item));
    }
    wake_owner();
    return AQ_OK;
}

void exchange::handler_returned() {
    {
        std::lock_guard lock(mutex_);
        handler_done_ = true;
        if (state_ == response_state::none) {
            // The SDK's trampoline always answers; a plugin written against abi.h directly may
            // not. The client still gets a well-formed answer.
            state_ = response_state::complete;
            outbound item;
            item.kind = outbound::complete;
            item.status = 500;
            item.headers = {{"Content-Type", "application/json"}};
            item.data = aq::error_envelope("The handler returned without a response.", "server_error");
            out_.push_back(std::move(item));
        } else if (state_ == response_state::streaming) {
            aborted_ = true;  // the length or chunk framing can't be completed honestly
        }
    }
    wake_owner();
}

// ---- response, connection side ---------------------------------------------------------------

bool exchange::pop(outbound& item) {
    {
        std::lock_guard lock(mutex_);
        if (out_.empty()) return false;
        item = std::move(out_.front());
        out_.pop_front();
        if (item.kind == outbound::chunk) out_queued_ -= item.data.size();
    }
    response_room_.notify_one();
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
    {
        std::lock_guard lock(mutex_);
        disconnected_ = true;
        out_.clear();
        out_queued_ = 0;
    }
    body_ready_.notify_all();
    response_room_.notify_all();
}

}  // namespace aqd
