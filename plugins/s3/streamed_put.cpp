#include "streamed_put.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace aq::s3 {

namespace {

// Thrown into the transport by take() after cancel(): the connection is dropped mid-body.
struct put_cancelled : std::runtime_error {
    put_cancelled() : std::runtime_error("the streamed PUT was cancelled") {}
};

}  // namespace

streamed_put::streamed_put(client& c, std::string key, std::size_t queue_limit)
    : client_(c), key_(std::move(key)), queue_limit_(std::max<std::size_t>(queue_limit, 1)) {
    thread_ = std::thread([this] { run(); });
}

void streamed_put::run() {
    body_source source;
    source.chunked = true;
    source.read = [this](char* buf, std::size_t cap) { return take(buf, cap); };
    std::string etag;
    std::exception_ptr failure;
    try {
        etag = client_.put_object(key_, source);
    } catch (...) {
        failure = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    if (failure) {
        failure_ = failure;
        put_ = put::failed;
    } else {
        etag_ = std::move(etag);
        put_ = put::stored;
    }
    queued_.clear();
    queued_bytes_ = 0;
    changed_.notify_all();
}

std::size_t streamed_put::take(char* buf, std::size_t cap) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !queued_.empty() || feed_ != feed::open; });
    // Cancelled: whatever is queued is not sent, and the body never gets its last chunk.
    if (feed_ == feed::cancelled) throw put_cancelled();
    if (queued_.empty()) return 0;  // ended, and all of it sent: the last chunk follows
    std::string& front = queued_.front();
    std::size_t n = std::min(cap, front.size() - front_taken_);
    std::memcpy(buf, front.data() + front_taken_, n);
    front_taken_ += n;
    queued_bytes_ -= n;
    if (front_taken_ == front.size()) {
        front.clear();
        spares_.push_back(std::move(front));
        queued_.pop_front();
        front_taken_ = 0;
    }
    changed_.notify_all();
    return n;
}

std::string streamed_put::spare() {
    std::lock_guard lock(mutex_);
    if (spares_.empty()) return {};
    std::string s = std::move(spares_.back());
    spares_.pop_back();
    return s;
}

void streamed_put::push(std::string block) {
    if (block.empty()) return;  // an empty chunk would end the body
    std::unique_lock lock(mutex_);
    if (feed_ != feed::open) throw std::logic_error("streamed_put: push after finish or cancel");
    changed_.wait(lock, [&] { return queued_bytes_ < queue_limit_ || put_ != put::running; });
    if (put_ == put::failed) std::rethrow_exception(failure_);
    if (put_ == put::stored) throw std::logic_error("streamed_put: the PUT ended before its body did");
    queued_bytes_ += block.size();
    queued_.push_back(std::move(block));
    changed_.notify_all();
}

std::string streamed_put::finish() {
    {
        std::lock_guard lock(mutex_);
        if (feed_ != feed::open) throw std::logic_error("streamed_put: finish after finish or cancel");
        feed_ = feed::ended;
        changed_.notify_all();
    }
    thread_.join();
    if (put_ == put::failed) std::rethrow_exception(failure_);
    return etag_;
}

void streamed_put::cancel() noexcept {
    {
        std::lock_guard lock(mutex_);
        if (feed_ == feed::open) feed_ = feed::cancelled;
        changed_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
}

}  // namespace aq::s3
