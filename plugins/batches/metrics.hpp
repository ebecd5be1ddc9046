// The batches plugin's metrics (registered at init; updates are lock-free in the host):
//   aqueduct_batches{status}                       batches in the database by status (a gauge,
//       refreshed every second by the "batch-counts" job; every host reports the same numbers)
//   aqueduct_batches_lines_total{outcome}          lines this host recorded: succeeded, failed
//       (a final error), retried (scheduled again), cancelled, expired (never sent)
//   aqueduct_batches_upstream_requests_total{upstream,status}  requests sent, by the HTTP status
//       or, without an answer, timeout | connection_error | invalid_response
//   aqueduct_batches_upstream_latency_seconds{upstream}        from send to the complete answer
//   aqueduct_batches_upstream_retries_total{upstream}          lines scheduled for another try
//   aqueduct_batches_upstream_in_rotation{upstream}            1 while the upstream is in
//       rotation on this host, 0 while it cools down or is being probed (upstream_pool.hpp)
//   aqueduct_batches_upstream_concurrency_cap{upstream}        the adaptive cap on lines in
//       flight on this host, between min_concurrency and max_concurrency (upstream_pool.hpp)
// plus the pool's (sql/pool_metrics.hpp). The runner reports each recorded group through
// lines_recorded(); nothing else in the plugin knows about metrics.
#pragma once

#include "config.hpp"
#include "line_queue.hpp"
#include "upstream.hpp"

#include "sql/pool.hpp"

#include <aqueduct/plugin.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace batches {

class batch_metrics {
public:
    batch_metrics(const aq::host& host, const config& cfg);

    // An upstream answered (or failed to): `upstream` is its index in the config. Thread: the
    // upstream client's I/O thread.
    void upstream_reply(std::size_t upstream, const ::batches::upstream_reply& reply,
                        std::chrono::steady_clock::duration latency) const;
    // Outcomes just recorded, with the upstream index of each line (SIZE_MAX: none).
    void lines_recorded(const std::vector<line_outcome>& outcomes, const std::vector<std::size_t>& upstreams) const;
    // The upstream went out of rotation (false) or came back (true). Thread: the runner's.
    void upstream_in_rotation(std::size_t upstream, bool in) const;
    // The upstream's adaptive concurrency cap changed. Thread: the runner's.
    void upstream_concurrency_cap(std::size_t upstream, unsigned cap) const;
    // Counts batches by status in the database. Thread: the batch-counts job.
    void refresh_status_counts(aq::sql::pool& pool);

private:
    struct per_upstream {
        std::string name;
        aq::histogram latency;
        aq::counter retries;
        aq::gauge in_rotation;
        aq::gauge concurrency_cap;
    };
    std::vector<per_upstream> upstreams_;
    aq::counter_family requests_;
    aq::counter succeeded_, failed_, retried_, cancelled_, expired_;
    aq::gauge_family statuses_;
    // Status series seen so far: a status that disappears from the table is set to 0.
    std::map<std::string, aq::gauge> status_series_;
    // upstream x status -> series, found once (a lock in the host) and kept.
    mutable std::mutex mu_;
    mutable std::map<std::pair<std::size_t, std::string>, aq::counter> request_series_;
};

}  // namespace batches
