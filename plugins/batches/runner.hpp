// The batch runner: the plugin's scheduler job.
//
// Each run validates batches in `validating`, claims runnable lines with leases (fair
// round-robin across owners, then across each owner's batches), sends them through the
// upstream client (bounded globally by max_in_flight and per upstream by max_concurrency),
// records every result durably as it arrives (one transaction per drained group of results;
// a result whose lease was lost is dropped, so each line is recorded exactly once), schedules
// retries with exponential backoff, jitter and retry-after (a 429's retry-after also pauses new
// lines to that upstream), renews its leases, and finalizes
// finished, expired and cancelled batches. A run keeps going while work is in flight and
// returns when idle; the scheduler calls it again every poll_interval_ms.
//
// All database work happens on the job's thread; the upstream client's I/O thread only hands
// replies over through a queue.
#pragma once

#include "config.hpp"
#include "store.hpp"
#include "upstream.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace batches {

class runner {
public:
    runner(aq::host host, const config& cfg, store& db, const aq_files_v1& files);
    ~runner();

    // The job body. Thread: the scheduler's (never two at once).
    void run();

    // This host's lease identity.
    const std::string& id() const noexcept { return me_; }

private:
    struct completion {
        claimed_line line;
        upstream_reply reply;
    };

    void housekeeping();
    std::size_t dispatch(std::size_t capacity);
    void send(claimed_line line);
    std::size_t record(std::vector<completion>& done);
    long long backoff_ms(long long attempts, long long retry_after_ms);

    aq::host host_;
    const config& cfg_;
    store& db_;
    const aq_files_v1& files_;
    std::string me_;
    long long claim_seq_ = 0;
    std::size_t rr_ = 0;
    std::size_t in_flight_ = 0;  // job thread only
    // Per upstream: no new lines before this time (ms), set by a 429 with retry-after, since
    // an upstream's rate limit is usually for the whole key, not for one line. Job thread only.
    std::vector<long long> paused_until_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<completion> done_;

    upstream_client client_;  // last: destroyed first, so no callback outlives the queue
};

}  // namespace batches
