// Readiness (GET /readyz): whether every plugin can serve now, as its own check says.
//
// Liveness (/healthz) only says the process answers; readiness says a load balancer should send
// it traffic: a plugin whose database is gone is alive but not ready. Checks may block briefly
// (a database ping), so they never run on an I/O thread: check() runs them one after another
// on a job thread every readiness_interval_ms, and /readyz reads the results it left. A check
// that has not finished for three intervals counts as "not ready", so a hung database cannot
// leave a stale "ready" behind. Plugins without a check are ready once their init returned.
#pragma once

#include "aqueduct/abi.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace aqd {

class readiness {
public:
    explicit readiness(std::chrono::milliseconds interval) : interval_(interval) {}

    // During plugin init (main thread). False when the plugin already has a check.
    bool add(const std::string& plugin, aq_readiness_fn fn, void* ctx);

    // Runs every check once and keeps the results; logs each change. Thread: one at a time
    // (the first run on the main thread before listening, then a job thread).
    void check();

    // How many plugins registered a check.
    std::size_t size() const;

    // The plugins not ready now (empty: ready). Thread: any.
    std::vector<std::string> not_ready() const;

private:
    using clock_type = std::chrono::steady_clock;
    struct entry {
        std::string plugin;
        aq_readiness_fn fn;
        void* ctx;
        bool ready = false;                  // the last answer
        clock_type::time_point answered{};   // when it came
        bool reported = true;                // what the log last said (a change is logged once)
    };

    const std::chrono::milliseconds interval_;
    mutable std::mutex mutex_;
    std::vector<entry> entries_;
};

}  // namespace aqd
