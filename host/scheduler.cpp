#include "scheduler.hpp"

#include "log.hpp"

#include <exception>
#include <random>
#include <stdexcept>

namespace aqd {

using clock_type = std::chrono::steady_clock;

struct scheduler::job {
    std::string name;
    std::chrono::milliseconds interval;
    std::chrono::milliseconds jitter;
    std::function<void()> run;
    clock_type::time_point next{};
    bool running = false;
};

namespace {

// Uniform in [0, max]. One generator for the process, behind its own mutex: runs end on worker
// threads of possibly several schedulers.
std::chrono::milliseconds random_jitter(std::chrono::milliseconds max) {
    if (max.count() <= 0) return std::chrono::milliseconds(0);
    static std::mutex gen_mutex;
    static std::mt19937_64 gen{std::random_device{}()};
    std::lock_guard lock(gen_mutex);
    std::uniform_int_distribution<long long> dist(0, max.count());
    return std::chrono::milliseconds(dist(gen));
}

}  // namespace

scheduler::scheduler(executor exec) : exec_(std::move(exec)) {}

scheduler::~scheduler() { stop(); }

void scheduler::add(std::string name, std::chrono::milliseconds interval, std::chrono::milliseconds jitter,
                    std::function<void()> run) {
    if (interval.count() <= 0) throw std::invalid_argument("job " + name + ": interval must be positive");
    if (jitter.count() < 0) throw std::invalid_argument("job " + name + ": jitter must not be negative");
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stopping_) throw std::logic_error("job " + name + ": added after the scheduler started");
    auto j = std::make_shared<job>();
    j->name = std::move(name);
    j->interval = interval;
    j->jitter = jitter;
    j->run = std::move(run);
    jobs_.push_back(std::move(j));
}

std::size_t scheduler::size() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

void scheduler::start() {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stopping_) return;
    const auto now = clock_type::now();
    for (auto& j : jobs_) j->next = now + j->interval + random_jitter(j->jitter);
    thread_ = std::thread([this] { loop(); });
}

void scheduler::stop() {
    std::thread timer;
    {
        std::unique_lock lock(mutex_);
        stopping_ = true;
        wake_.notify_all();
        wake_.wait(lock, [this] { return running_ == 0; });
        timer.swap(thread_);  // whoever calls stop() first joins; later calls find nothing
    }
    if (timer.joinable()) timer.join();
}

void scheduler::loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        // The earliest job that is not running; a running job has no next run until it ends.
        std::shared_ptr<job> due;
        for (auto& j : jobs_)
            if (!j->running && (!due || j->next < due->next)) due = j;

        if (!due) {
            wake_.wait(lock);
            continue;
        }
        if (clock_type::now() < due->next) {
            wake_.wait_until(lock, due->next);
            continue;  // re-evaluate: stop() or a finished run may have woken us
        }

        due->running = true;
        ++running_;
        auto task = [this, due] {
            try {
                due->run();
            } catch (const std::exception& e) {
                log::error("scheduler", "job " + due->name + " failed: " + e.what());
            } catch (...) {
                log::error("scheduler", "job " + due->name + " failed with an unknown exception");
            }
            std::lock_guard done(mutex_);
            due->running = false;
            due->next = clock_type::now() + due->interval + random_jitter(due->jitter);
            --running_;
            // Notified under the lock: once stop() sees running_ == 0 it may destroy *this, so
            // nothing here may touch members after the mutex is released.
            wake_.notify_all();
        };

        // The executor may block (a full worker queue); the timer must not hold the lock then.
        lock.unlock();
        bool refused = false;
        std::string failure;
        try {
            exec_(std::move(task));
        } catch (const std::exception& e) {
            refused = true;
            failure = e.what();
        } catch (...) {
            refused = true;
            failure = "unknown exception";
        }
        lock.lock();
        if (refused) {
            // The executor refused the run (a stopped pool): undo the bookkeeping, try later.
            due->running = false;
            due->next = clock_type::now() + due->interval + random_jitter(due->jitter);
            --running_;
            wake_.notify_all();
            log::error("scheduler", "job " + due->name + " could not be started: " + failure);
        }
    }
}

}  // namespace aqd
