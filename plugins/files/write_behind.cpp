#include "write_behind.hpp"

#include <algorithm>

namespace aq::files {

void write_behind::push(std::string_view data) {
    while (!data.empty()) {
        if (filling_.capacity() < block_bytes) filling_.reserve(block_bytes);
        const std::size_t take = std::min(data.size(), block_bytes - filling_.size());
        filling_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (filling_.size() == block_bytes) hand_over();
    }
}

void write_behind::hand_over() {
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return queued_.size() < blocks_in_flight || failure_; });
    if (failure_) std::rethrow_exception(failure_);
    queued_.push_back(std::move(filling_));
    filling_ = std::string();
    if (!spare_.empty()) {
        filling_ = std::move(spare_.front());
        spare_.pop_front();
        filling_.clear();
    }
    lock.unlock();
    changed_.notify_all();
}

void write_behind::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return !queued_.empty() || closing_; });
        if (queued_.empty()) return;  // closing, everything passed on
        std::string block = std::move(queued_.front());
        queued_.pop_front();
        busy_ = true;
        lock.unlock();
        changed_.notify_all();  // room in the queue: a caller may hand over the next block now
        try {
            sink_(block);
        } catch (...) {
            lock.lock();
            busy_ = false;
            failure_ = std::current_exception();
            queued_.clear();
            changed_.notify_all();
            return;
        }
        lock.lock();
        busy_ = false;
        if (spare_.size() < blocks_in_flight) spare_.push_back(std::move(block));
        changed_.notify_all();
    }
}

void write_behind::rethrow_failure() {
    std::lock_guard lock(mutex_);
    if (failure_) std::rethrow_exception(failure_);
}

void write_behind::wait_idle() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return (queued_.empty() && !busy_) || failure_; });
    if (failure_) std::rethrow_exception(failure_);
}

void write_behind::flush() {
    if (!filling_.empty()) hand_over();
    if (thread_.joinable()) wait_idle();
}

void write_behind::finish() {
    if (thread_.joinable()) {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;  // the thread passes on what is queued, then ends
        }
        changed_.notify_all();
        thread_.join();
        rethrow_failure();
    }
    if (!filling_.empty()) sink_(filling_);  // the last, partial block (or the whole content)
    filling_.clear();
}

void write_behind::cancel() noexcept {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
        queued_.clear();
    }
    changed_.notify_all();
    thread_.join();
}

}  // namespace aq::files
