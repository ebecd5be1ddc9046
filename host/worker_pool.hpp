// The threads that run plugin handlers and jobs as ordinary blocking code.
//
// I/O threads never block: they hand each request to this pool, where a handler may wait on the
// database, on the request body or on a full outbound queue. The pool has a fixed number of
// threads (config `workers`); work beyond that waits in FIFO order.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace aqd {

class worker_pool {
public:
    explicit worker_pool(unsigned threads);
    ~worker_pool();

    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;

    // Thread: any. Tasks posted after stop() are dropped.
    void post(std::function<void()> task);

    // Runs what is queued, then joins the threads. Idempotent.
    void stop();

private:
    void run();

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace aqd
