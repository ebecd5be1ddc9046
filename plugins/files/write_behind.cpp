#include "write_behind.hpp"

#include <algorithm>

namespace aq::files {

write_behind::write_behind(std::vector<sink> stages) : stages_(stages.size()) {
    for (std::size_t i = 0; i < stages.size(); ++i) stages_[i].run = std::move(stages[i]);
}

void write_behind::push(std::string_view data) {
    while (!data.empty()) {
        if (filling_.capacity() < block_bytes) filling_.reserve(block_bytes);
        const std::size_t take = std::min(data.size(), block_bytes - filling_.size());
        filling_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (filling_.size() == block_bytes) hand_over();
    }
}

std::size_t write_behind::in_flight() const {
    std::size_t n = 0;
    for (const stage& s : stages_) n += s.queued.size() + (s.now == stage::activity::running ? 1 : 0);
    return n;
}

void write_behind::hand_over() {
    if (!started_) {
        started_ = true;
        for (std::size_t i = 0; i < stages_.size(); ++i) stages_[i].thread = std::thread([this, i] { run(i); });
    }
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return in_flight() < blocks_in_flight || failure_; });
    if (failure_) std::rethrow_exception(failure_);
    stages_.front().queued.push_back(std::move(filling_));
    filling_ = std::string();
    if (!spare_.empty()) {
        filling_ = std::move(spare_.front());
        spare_.pop_front();
        filling_.clear();
    }
    lock.unlock();
    changed_.notify_all();
}

// Stage `index`'s thread: takes its blocks in order, passes each on to the next stage. It ends
// when the stage before it has ended (or, for the first, the caller is closing) and nothing is
// left for it, or at once after any stage failed.
void write_behind::run(std::size_t index) {
    stage& me = stages_[index];
    const auto upstream_done = [&] {
        return index == 0 ? ending_ != ending::no : stages_[index - 1].now == stage::activity::ended;
    };
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return !me.queued.empty() || upstream_done() || failure_; });
        if (failure_ || me.queued.empty()) break;
        std::string block = std::move(me.queued.front());
        me.queued.pop_front();
        me.now = stage::activity::running;
        lock.unlock();
        try {
            me.run(block);
        } catch (...) {
            lock.lock();
            me.now = stage::activity::waiting;
            if (!failure_) failure_ = std::current_exception();
            for (stage& s : stages_) s.queued.clear();
            break;
        }
        lock.lock();
        me.now = stage::activity::waiting;
        // After cancel() a block goes no further than the stage that had it.
        if (index + 1 < stages_.size() && ending_ != ending::cancelled)
            stages_[index + 1].queued.push_back(std::move(block));
        else if (spare_.size() < blocks_in_flight)
            spare_.push_back(std::move(block));
        changed_.notify_all();
    }
    me.now = stage::activity::ended;
    changed_.notify_all();
}

void write_behind::rethrow_failure() {
    std::lock_guard lock(mutex_);
    if (failure_) std::rethrow_exception(failure_);
}

void write_behind::wait_idle() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return in_flight() == 0 || failure_; });
    if (failure_) std::rethrow_exception(failure_);
}

void write_behind::join_all() noexcept {
    for (stage& s : stages_)
        if (s.thread.joinable()) s.thread.join();
}

void write_behind::pass_on() {
    if (!filling_.empty()) hand_over();
}

void write_behind::flush() {
    pass_on();
    if (started_) wait_idle();
}

void write_behind::finish() {
    if (started_) {
        {
            std::lock_guard lock(mutex_);
            ending_ = ending::finishing;  // the threads pass on what is queued, then end, in stage order
        }
        changed_.notify_all();
        join_all();
        rethrow_failure();
    }
    if (!filling_.empty())  // the last, partial block (or the whole content)
        for (stage& s : stages_) s.run(filling_);
    filling_.clear();
}

void write_behind::cancel() noexcept {
    if (!started_) return;
    {
        std::lock_guard lock(mutex_);
        ending_ = ending::cancelled;
        for (stage& s : stages_) s.queued.clear();
    }
    changed_.notify_all();
    join_all();
}

}  // namespace aq::files
