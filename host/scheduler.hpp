// Named periodic jobs.
//
// A timer thread decides when a job is due and hands the run to an executor (in the host, threads
// of the jobs' own, one per job, so request handlers never delay a job).
// A job never runs twice at once: its next run is only scheduled after the previous one ended,
// interval + a random 0..jitter later, so hosts sharing a database spread out their runs.
// stop() cancels future runs and waits for the running ones.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aqd {

class scheduler {
public:
    using executor = std::function<void(std::function<void()>)>;

    explicit scheduler(executor exec);
    ~scheduler();

    // Only before start().
    void add(std::string name, std::chrono::milliseconds interval, std::chrono::milliseconds jitter,
             std::function<void()> run);

    // How many jobs are registered: at most that many runs at once (none runs twice).
    std::size_t size() const;

    void start();
    // Idempotent. Returns when no job is running and none will start.
    void stop();

private:
    struct job;
    void loop();

    executor exec_;
    std::vector<std::shared_ptr<job>> jobs_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    int running_ = 0;
    std::thread thread_;
};

}  // namespace aqd
