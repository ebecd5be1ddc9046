#include "heartbeat.hpp"

#include "batch_table.hpp"
#include "line_queue.hpp"
#include "wall_clock.hpp"

#include "sql/pool.hpp"

#include <vector>

namespace batches {

heartbeat::heartbeat(aq::host host, const config& cfg, std::string me, halted_batches& halted)
    : host_(host), cfg_(cfg), me_(std::move(me)), halted_(halted),
      pool_(std::make_unique<aq::sql::pool>(cfg.database, 1)), thread_([this] { loop(); }) {}

heartbeat::~heartbeat() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

heartbeat::batch_hold::batch_hold(heartbeat& hb, std::string batch_id)
    : hb_(hb), batch_id_(std::move(batch_id)), lost_(std::make_shared<std::atomic<bool>>(false)) {
    std::lock_guard lock(hb_.mu_);
    hb_.held_[batch_id_] = lost_;
}

heartbeat::batch_hold::~batch_hold() {
    std::lock_guard lock(hb_.mu_);
    auto it = hb_.held_.find(batch_id_);
    if (it != hb_.held_.end() && it->second == lost_) hb_.held_.erase(it);
}

void heartbeat::loop() {
    using clock_type = std::chrono::steady_clock;
    const auto renew_every = std::chrono::milliseconds(static_cast<long long>(cfg_.lease_seconds) * 1000 / 3);
    const auto refresh_every = std::chrono::milliseconds(cfg_.poll_interval_ms);
    auto next_renew = clock_type::now() + renew_every, next_refresh = clock_type::now();
    std::unique_lock lock(mu_);
    while (!stopping_) {
        auto now = clock_type::now();
        bool renew = now >= next_renew, refresh = now >= next_refresh;
        if (renew || refresh) {
            lock.unlock();
            beat(renew, refresh);
            lock.lock();
            now = clock_type::now();
            if (renew) next_renew = now + renew_every;
            if (refresh) next_refresh = now + refresh_every;
            continue;
        }
        wake_.wait_until(lock, std::min(next_renew, next_refresh));
    }
}

void heartbeat::beat(bool renew, bool refresh) {
    // A failed beat is logged and tried again at the next one: the database may be restarting.
    try {
        if (renew) {
            const long long until = now_ms() + static_cast<long long>(cfg_.lease_seconds) * 1000;
            line_queue(*pool_).renew(me_, until);
            std::vector<std::pair<std::string, std::shared_ptr<std::atomic<bool>>>> held;
            {
                std::lock_guard lock(mu_);
                held.assign(held_.begin(), held_.end());
            }
            batch_table table(*pool_);
            for (auto& [id, lost] : held)
                if (!table.renew(id, me_, until)) lost->store(true);
        }
        if (refresh) {
            auto started = halted_batches::clock_type::now();
            halted_.refresh(batch_table(*pool_).cancelling(), started);
        }
    } catch (const std::exception& e) {
        std::string what = e.what();
        if (what.size() > 300) what.resize(300);
        host_.warn("batches: heartbeat failed, will retry: " + what);
    }
}

}  // namespace batches
