// This host's heartbeat: on a thread and a database session of its own, it renews every lease
// the host holds (its running lines, and the batches it is validating or finalizing) every
// third of lease_seconds, and refreshes the halted batches from the database every
// poll_interval_ms.
//
// Because nothing else runs on that thread, a lease lapses only when the whole host stalls (or
// the database is unreachable) for two thirds of lease_seconds, not when validation or
// finalization takes long. That is what allows a short default lease, so a dead host's lines are
// taken over within seconds. A lease that was lost anyway (another host took it over) is
// reported through batch_hold::lost(); the fenced writes of batch_table and line_queue are what
// actually keep a host without its lease from committing.
#pragma once

#include "config.hpp"
#include "halted_batches.hpp"

#include <aqueduct/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace aq::sql {
class pool;
}

namespace batches {

class heartbeat {
public:
    // Opens its own session on cfg.database and starts the thread.
    heartbeat(aq::host host, const config& cfg, std::string me, halted_batches& halted);
    ~heartbeat();  // stops the thread
    heartbeat(const heartbeat&) = delete;
    heartbeat& operator=(const heartbeat&) = delete;

    const std::string& me() const noexcept { return me_; }

    // Keeps the lease of one batch (already taken by `me`) alive while it exists.
    class batch_hold {
    public:
        batch_hold(heartbeat& hb, std::string batch_id);
        ~batch_hold();
        batch_hold(const batch_hold&) = delete;
        batch_hold& operator=(const batch_hold&) = delete;
        // True once a renewal found the lease in another host's hands.
        bool lost() const noexcept { return lost_->load(); }

    private:
        heartbeat& hb_;
        std::string batch_id_;
        std::shared_ptr<std::atomic<bool>> lost_;
    };

private:
    void loop();
    void beat(bool renew, bool refresh);

    aq::host host_;
    const config& cfg_;
    std::string me_;
    halted_batches& halted_;
    std::unique_ptr<aq::sql::pool> pool_;

    std::mutex mu_;
    std::condition_variable wake_;
    bool stopping_ = false;
    // Held batch leases: id -> its hold's lost flag (one hold per batch at a time).
    std::map<std::string, std::shared_ptr<std::atomic<bool>>> held_;
    std::thread thread_;  // last: started once everything above exists
};

}  // namespace batches
