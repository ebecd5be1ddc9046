// Unix time as the batches tables store it: API timestamps in seconds, lease and retry times in
// milliseconds. Wall-clock (not steady) on purpose: several hosts compare these values through
// the database, so they must mean the same instant everywhere (NTP keeps hosts within a few ms).
#pragma once

#include <chrono>

namespace batches {

inline long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline long long now_s() { return now_ms() / 1000; }

}  // namespace batches
