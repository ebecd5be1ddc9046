// The threads that run plugin handlers as ordinary blocking code.
//
// I/O threads never block: they hand each request to this pool, where a handler may wait on the
// database or a full outbound queue, never on the client (bodies are spooled first). The pool
// has a fixed number of threads (config `workers`). New requests wait in a FIFO queue of at most
// max_queued tasks: try_post refuses beyond it, and the connection answers 503 with retry-after
// instead of letting the queue (and its spooled bodies) grow without end. Continuations of
// requests already admitted (pulling the next chunk of a streamed response) are never refused:
// there is at most one per response in flight.
//
// Jobs do not run here: the scheduler has threads of its own, so a pool full of handlers never
// delays them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace aqd {

class worker_pool {
public:
    // max_queued 0: no bound.
    explicit worker_pool(unsigned threads, std::size_t max_queued = 0);
    ~worker_pool();

    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;

    // A new request. Thread: any. False when the queue is full or the pool stopped.
    bool try_post(std::function<void()> task);
    // A continuation of admitted work; never refused while running. Thread: any. Tasks posted
    // after stop() are dropped.
    void post(std::function<void()> task);
    // True when try_post would refuse now (checked before a body is read; a race only means
    // the refusal comes after the body instead).
    bool saturated() const;
    // Tasks waiting for a thread now (metrics).
    std::size_t queued() const;

    // Runs what is queued, then joins the threads. Idempotent.
    void stop();

private:
    void run();

    const std::size_t max_queued_;
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace aqd
