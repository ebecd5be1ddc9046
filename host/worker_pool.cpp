#include "worker_pool.hpp"

#include "log.hpp"

#include <exception>

namespace aqd {

worker_pool::worker_pool(unsigned threads, std::size_t max_queued) : max_queued_(max_queued) {
    if (threads == 0) threads = 1;
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

worker_pool::~worker_pool() { stop(); }

bool worker_pool::try_post(std::function<void()> task) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || (max_queued_ && tasks_.size() >= max_queued_)) return false;
        tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
    return true;
}

void worker_pool::post(std::function<void()> task) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
}

bool worker_pool::saturated() const {
    std::lock_guard lock(mutex_);
    return stopping_ || (max_queued_ && tasks_.size() >= max_queued_);
}

std::size_t worker_pool::queued() const {
    std::lock_guard lock(mutex_);
    return tasks_.size();
}

void worker_pool::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    std::lock_guard lock(mutex_);
    threads_.clear();
}

void worker_pool::run() {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
            if (tasks_.empty()) return;  // stopping and drained
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        // Tasks are the host's own wrappers around plugin callbacks, which are noexcept; this
        // catch keeps a host bug from taking a worker down with it.
        try {
            task();
        } catch (const std::exception& e) {
            log::error("host", std::string("worker task failed: ") + e.what());
        } catch (...) {
            log::error("host", "worker task failed with an unknown exception");
        }
    }
}

}  // namespace aqd
