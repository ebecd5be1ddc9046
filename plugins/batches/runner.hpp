// The batch runner: the plugin's job that sends lines upstream and records their results.
//
// Each run claims runnable lines with leases (fair round-robin across owners, then across each
// owner's batches; only lines of `in_progress` batches; a batch whose model's upstreams have no
// room is passed over, so it never holds up batches of other models), sends each to the upstream
// the pool picks for its model (upstream_pool.hpp: weights, load, health, aliases; bounded
// globally by max_in_flight and per upstream by max_concurrency), records every result
// durably as it arrives (one transaction per drained group of results; a result whose lease was
// lost is dropped, so each line is recorded exactly once), and schedules retries with
// exponential backoff, jitter and a capped retry-after (a 429's retry-after also pauses new
// lines to that upstream, on every host through rate_table). Upstreams with rate limits take
// lines only within the shares this runner draws from the shared buckets (rate_table.hpp). A
// run keeps going while work is in flight and returns when idle; the scheduler calls it again
// every poll_interval_ms.
//
// A claimed line may wait in the upstream client's queue until a connection is free. Right
// before it is sent, its batch is checked against the halted batches and its window: a line of
// a batch being cancelled (or past its window) is not sent and is recorded as a batch_cancelled
// (batch_expired) error line instead.
//
// Leases are renewed by the heartbeat, validation and finalization run in the housekeeper: this
// job only claims, sends and records. All its database work happens on the job's thread; the
// upstream client's I/O thread only hands replies over through a queue.
#pragma once

#include "config.hpp"
#include "halted_batches.hpp"
#include "line_queue.hpp"
#include "metrics.hpp"
#include "rate_table.hpp"
#include "upstream.hpp"
#include "upstream_pool.hpp"

#include <aqueduct/plugin.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace batches {

class runner {
public:
    // `me`: this host's lease identity (the heartbeat renews what it claims). `metrics`: where
    // replies and recorded outcomes are counted (null: nowhere, for tests of the runner alone).
    // `rates`: the rate budgets and 429 pauses shared with other hosts (null: rate limits are
    // this runner's alone, drawn from an in-memory bucket, and 429 pauses too).
    runner(aq::host host, const config& cfg, batch_table& batches, line_queue& lines, const halted_batches& halted,
           std::string me, const batch_metrics* metrics = nullptr, rate_table* rates = nullptr);
    ~runner();

    // The job body. Thread: the scheduler's (never two at once).
    void run();

private:
    struct completion {
        claimed_line line;
        upstream_reply reply;
        std::string sent_request_id;  // the x-request-id the attempt was sent with
        std::size_t upstream = upstream_pool::none;  // none: not sent (no upstream could take it)
        sent_attempt sent;      // probe, cap epoch, latency: for the pool
        bool observed = false;  // the pool has seen it (a failed recording keeps it for later)
    };

    std::size_t dispatch(std::size_t capacity);
    // Draws rate shares for the limited upstreams serving `runnable` batches that need one, and
    // reads every host's 429 pauses (at most every rate_burst_ms unless a draw is due).
    void sync_rates(long long now_ms, const std::vector<batch_work>& runnable);
    // Tells the other hosts of the 429 pauses received since the last call.
    void share_pauses();
    void send(claimed_line line);
    std::size_t record(std::vector<completion>& done);
    line_outcome outcome_of(const completion& c, long long now);
    long long backoff_ms(long long attempts, long long retry_after_ms);

    aq::host host_;
    const config& cfg_;
    batch_table& batches_;
    line_queue& lines_;
    const halted_batches& halted_;
    std::string me_;
    const batch_metrics* metrics_;
    long long claim_seq_ = 0;
    // The owner whose claim got lines last: the next run of claims starts with the owner after
    // it (in byte order of owner keys), so owners take turns by claims that got lines, not by
    // runs of dispatch (a run that found no room, e.g. waiting for a rate share, is no turn).
    std::string last_owner_;
    std::size_t in_flight_ = 0;  // job thread only
    // Which upstream, health and pauses (a 429's retry-after pauses the upstream, since its
    // rate limit is usually for the whole key, not for one line). Job thread only.
    upstream_pool pool_;
    // The upstream each line waiting for a retry last failed on ("batch_id line_no"), so the
    // retry goes elsewhere when it can. Job thread only; an entry goes when the line is sent
    // again, and the map is cleared at max_failed_on entries (lines another host took).
    std::unordered_map<std::string, std::size_t> failed_on_;
    // Rate limits (rate_table.hpp). Job thread only.
    rate_table* rates_;
    bool estimates_tokens_ = false;   // some upstream has max_tokens_per_minute
    long long pauses_read_at_ = 0;
    long long rate_wake_ms_ = 0;      // a short draw: look again then, not a poll interval later
    std::map<std::size_t, long long> pauses_to_share_;  // upstream -> paused until (ms)
    std::map<std::size_t, bucket_level> local_buckets_; // without `rates`: the buckets

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<completion> done_;

    upstream_client client_;  // last: destroyed first, so no callback outlives the queue
};

}  // namespace batches
