#include "pipelined_sha256.hpp"

#include <algorithm>

namespace aq::files {

pipelined_sha256::~pipelined_sha256() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
        queued_.clear();  // an abandoned upload: its digest is never asked for
    }
    changed_.notify_all();
    thread_.join();
}

void pipelined_sha256::update(std::string_view data) {
    while (!data.empty()) {
        if (filling_.capacity() < block_bytes) filling_.reserve(block_bytes);
        const std::size_t take = std::min(data.size(), block_bytes - filling_.size());
        filling_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (filling_.size() == block_bytes) hand_over();
    }
}

void pipelined_sha256::hand_over() {
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return queued_.size() < blocks_in_flight || failure_; });
    if (failure_) std::rethrow_exception(failure_);
    queued_.push_back(std::move(filling_));
    if (!spare_.empty()) {
        filling_ = std::move(spare_.front());
        spare_.pop_front();
    } else {
        filling_ = std::string();
    }
    filling_.clear();
    lock.unlock();
    changed_.notify_all();
}

void pipelined_sha256::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return !queued_.empty() || closing_; });
        if (queued_.empty()) return;  // closing, everything hashed
        std::string block = std::move(queued_.front());
        queued_.pop_front();
        lock.unlock();
        try {
            hash_.update(block);
        } catch (...) {
            lock.lock();
            failure_ = std::current_exception();
            changed_.notify_all();
            return;
        }
        lock.lock();
        if (spare_.size() < blocks_in_flight) spare_.push_back(std::move(block));
        changed_.notify_all();
    }
}

std::string pipelined_sha256::hex() {
    if (thread_.joinable()) {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;  // the thread hashes what is queued, then ends
        }
        changed_.notify_all();
        thread_.join();
        if (failure_) std::rethrow_exception(failure_);
    }
    hash_.update(filling_);  // the last, partial block (or the whole content), inline
    return hash_.hex();
}

}  // namespace aq::files
