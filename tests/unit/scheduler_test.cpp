#define BOOST_TEST_MODULE scheduler
#include <boost/test/unit_test.hpp>

#include "scheduler.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using aqd::scheduler;
using steady = std::chrono::steady_clock;

namespace {

// An executor like the worker pool: every run on a thread of its own, so runs of different jobs
// (or, if the scheduler were wrong, of one job) can overlap. Joined by the destructor.
class thread_executor {
public:
    ~thread_executor() { join(); }
    scheduler::executor get() {
        return [this](std::function<void()> task) {
            std::lock_guard lock(mutex_);
            threads_.emplace_back(std::move(task));
        };
    }
    void join() {
        std::vector<std::thread> threads;
        {
            std::lock_guard lock(mutex_);
            threads.swap(threads_);
        }
        for (auto& t : threads) t.join();
    }

private:
    std::mutex mutex_;
    std::vector<std::thread> threads_;
};

// Polls until `done` is true or a generous deadline passes (the machine may be loaded).
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = 20s) {
    const auto deadline = steady::now() + limit;
    while (!done()) {
        if (steady::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(slow_job_with_short_interval_never_overlaps_itself) {
    thread_executor pool;
    std::atomic<int> active{0}, max_active{0}, runs{0};
    {
        scheduler s(pool.get());
        s.add("slow", 1ms, 0ms, [&] {
            const int now = ++active;
            int seen = max_active.load();
            while (now > seen && !max_active.compare_exchange_weak(seen, now)) {}
            std::this_thread::sleep_for(30ms);  // far longer than the interval
            --active;
            ++runs;
        });
        s.start();
        BOOST_REQUIRE(eventually([&] { return runs.load() >= 5; }));
        s.stop();
    }
    pool.join();
    BOOST_TEST(max_active.load() == 1);
}

BOOST_AUTO_TEST_CASE(next_run_waits_one_interval_after_the_previous_run_ends) {
    thread_executor pool;
    std::mutex m;
    std::vector<steady::time_point> starts, ends;
    scheduler s(pool.get());
    s.add("gap", 50ms, 0ms, [&] {
        {
            std::lock_guard lock(m);
            starts.push_back(steady::now());
        }
        std::this_thread::sleep_for(100ms);
        std::lock_guard lock(m);
        ends.push_back(steady::now());
    });
    s.start();
    BOOST_REQUIRE(eventually([&] {
        std::lock_guard lock(m);
        return starts.size() >= 3;
    }));
    s.stop();
    pool.join();
    std::lock_guard lock(m);
    for (std::size_t i = 1; i < starts.size() && i <= ends.size(); ++i)
        BOOST_TEST((starts[i] - ends[i - 1] >= 50ms), "run " << i << " started before the interval after the previous end");
}

BOOST_AUTO_TEST_CASE(first_run_comes_one_interval_after_start) {
    thread_executor pool;
    std::atomic<bool> ran{false};
    steady::time_point started, first;
    scheduler s(pool.get());
    s.add("once", 200ms, 0ms, [&] {
        if (!ran.exchange(true)) first = steady::now();
    });
    started = steady::now();
    s.start();
    BOOST_REQUIRE(eventually([&] { return ran.load(); }));
    s.stop();
    pool.join();
    BOOST_TEST((first - started >= 200ms));
}

BOOST_AUTO_TEST_CASE(stop_waits_for_the_running_job) {
    thread_executor pool;
    std::atomic<bool> entered{false}, finished{false};
    scheduler s(pool.get());
    s.add("long", 1ms, 0ms, [&] {
        if (entered.exchange(true)) return;
        std::this_thread::sleep_for(300ms);
        finished = true;
    });
    s.start();
    BOOST_REQUIRE(eventually([&] { return entered.load(); }));
    s.stop();
    BOOST_TEST(finished.load());
    pool.join();
}

BOOST_AUTO_TEST_CASE(no_run_starts_after_stop_returns) {
    thread_executor pool;
    std::atomic<int> runs{0};
    scheduler s(pool.get());
    s.add("busy", 1ms, 0ms, [&] { ++runs; });
    s.start();
    BOOST_REQUIRE(eventually([&] { return runs.load() >= 3; }));
    s.stop();
    const int at_stop = runs.load();
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(runs.load() == at_stop);
    pool.join();
}

BOOST_AUTO_TEST_CASE(stop_is_idempotent_and_works_without_start) {
    thread_executor pool;
    {
        scheduler never_started(pool.get());
        never_started.add("x", 1ms, 0ms, [] {});
        never_started.stop();
        never_started.stop();
    }
    scheduler s(pool.get());
    s.add("x", 1ms, 0ms, [] {});
    s.start();
    s.stop();
    s.stop();
    pool.join();
}

BOOST_AUTO_TEST_CASE(jitter_delay_stays_within_interval_plus_jitter) {
    // Inline executor: the run happens on the timer thread, so the gap between one run's end and
    // the next run's start is exactly the scheduled delay plus scheduling latency.
    std::mutex m;
    std::vector<steady::time_point> starts;
    std::vector<steady::time_point> ends;
    scheduler s([](std::function<void()> task) { task(); });
    s.add("jittery", 20ms, 40ms, [&] {
        std::lock_guard lock(m);
        starts.push_back(steady::now());
        ends.push_back(steady::now());
    });
    s.start();
    BOOST_REQUIRE(eventually([&] {
        std::lock_guard lock(m);
        return starts.size() >= 12;
    }));
    s.stop();
    std::lock_guard lock(m);
    std::vector<std::chrono::milliseconds> gaps;
    for (std::size_t i = 1; i < starts.size(); ++i) {
        const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(starts[i] - ends[i - 1]);
        gaps.push_back(gap);
        BOOST_TEST((gap >= 20ms), "gap " << gap.count() << " ms is below the interval");
    }
    // The jitter is random: 11 gaps that all equal the bare interval would mean it was ignored.
    // (Each gap lands in [20, 25) ms with probability 1/8 if jitter works: 8^-11 to fail.)
    const bool some_jitter = std::any_of(gaps.begin(), gaps.end(), [](auto g) { return g >= 25ms; });
    BOOST_TEST(some_jitter);
    // The upper bound is interval + jitter = 60 ms. A stalled machine can stretch a few gaps, so
    // the bound is asserted for most of them (with 20 ms for wake-up latency), not for all.
    const auto within = std::count_if(gaps.begin(), gaps.end(), [](auto g) { return g <= 80ms; });
    BOOST_TEST(within * 2 >= static_cast<long>(gaps.size()), within << " of " << gaps.size() << " gaps within bound");
}

BOOST_AUTO_TEST_CASE(failing_job_keeps_being_scheduled) {
    thread_executor pool;
    std::atomic<int> runs{0};
    scheduler s(pool.get());
    s.add("throws", 1ms, 0ms, [&] {
        ++runs;
        throw std::runtime_error("boom");
    });
    s.start();
    BOOST_TEST(eventually([&] { return runs.load() >= 3; }));
    s.stop();
    pool.join();
}

BOOST_AUTO_TEST_CASE(refused_run_is_retried_and_stop_does_not_hang) {
    std::atomic<int> offers{0};
    scheduler s([&](std::function<void()>) {
        ++offers;
        throw std::runtime_error("pool stopped");
    });
    s.add("refused", 1ms, 0ms, [] {});
    s.start();
    BOOST_TEST(eventually([&] { return offers.load() >= 2; }));
    s.stop();
}

BOOST_AUTO_TEST_CASE(invalid_jobs_and_late_adds_are_refused) {
    scheduler s([](std::function<void()> task) { task(); });
    BOOST_CHECK_THROW(s.add("zero", 0ms, 0ms, [] {}), std::invalid_argument);
    BOOST_CHECK_THROW(s.add("negative-jitter", 1ms, -1ms, [] {}), std::invalid_argument);
    s.start();
    BOOST_CHECK_THROW(s.add("late", 1ms, 0ms, [] {}), std::logic_error);
    s.stop();
}
