// Batches whose lines must not start any more: the ones being cancelled.
//
// The upstream client asks right before it sends a claimed line (a line may wait there for a
// free connection for as long as the lines ahead of it take), and a line of a halted batch is
// handed back unsent, to become a batch_cancelled error line. Two sources fill the set: the
// cancel route of this host, at once, after its UPDATE committed; and the heartbeat, which
// reads the cancelling batches from the database every poll_interval_ms, for cancels that went
// through another host. Thread: any.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace batches {

class halted_batches {
public:
    using clock_type = std::chrono::steady_clock;

    // The cancel route, after the batch is `cancelling` in the database.
    void halt(const std::string& id) {
        std::lock_guard lock(mu_);
        local_[id] = clock_type::now();
    }

    // What the database says now, read by a query that started at `read_started`. A halt()
    // made after that may be missing from `ids`, so it is kept until a later read covers it.
    void refresh(std::vector<std::string> ids, clock_type::time_point read_started) {
        std::unordered_set<std::string> fresh(std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
        std::lock_guard lock(mu_);
        from_db_.swap(fresh);
        std::erase_if(local_, [&](const auto& entry) { return entry.second < read_started; });
    }

    bool contains(std::string_view id) const {
        std::string key(id);
        std::lock_guard lock(mu_);
        return from_db_.contains(key) || local_.contains(key);
    }

private:
    mutable std::mutex mu_;
    std::unordered_set<std::string> from_db_;
    std::unordered_map<std::string, clock_type::time_point> local_;
};

}  // namespace batches
