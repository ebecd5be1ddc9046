// Polls a condition every 50 ms until it holds or `timeout` passes: for what a test waits on
// across processes (a purge job, a log line written by another program, a server's state).
//
//   BOOST_TEST(aqt::wait_until([&] { return where.rows() == 1; }, 30s));
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace aqt {

inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

}  // namespace aqt
