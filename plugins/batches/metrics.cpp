#include "metrics.hpp"

#include <array>
#include <soci/soci.h>

namespace batches {

namespace {

// Upstream latencies: tens of milliseconds for a small completion to minutes for a long one.
constexpr std::array<double, 12> latency_buckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

// Every status a batch can have (batch_object.cpp), reported as 0 until one exists.
constexpr std::array<const char*, 8> known_statuses = {"validating", "failed",    "in_progress", "finalizing",
                                                       "completed",  "expired",   "cancelling",  "cancelled"};

}  // namespace

batch_metrics::batch_metrics(const aq::host& host, const config& cfg) {
    auto latency = host.histogram_family("aqueduct_batches_upstream_latency_seconds",
                                         "Upstream requests from send to the complete answer.", {"upstream"},
                                         latency_buckets);
    auto retries = host.counter_family("aqueduct_batches_upstream_retries_total",
                                       "Lines scheduled for another try after an upstream's answer or failure.",
                                       {"upstream"});
    auto rotation = host.gauge_family("aqueduct_batches_upstream_in_rotation",
                                      "1 while the upstream is in rotation on this host, 0 while it cools down "
                                      "or is being probed.",
                                      {"upstream"});
    auto cap = host.gauge_family("aqueduct_batches_upstream_concurrency_cap",
                                 "The adaptive cap on the upstream's requests in flight from this host, between "
                                 "min_concurrency and max_concurrency.",
                                 {"upstream"});
    for (const auto& up : cfg.upstreams) {
        upstreams_.push_back({up.name, latency.with({up.name}), retries.with({up.name}), rotation.with({up.name}),
                              cap.with({up.name})});
        upstreams_.back().in_rotation.set(1);
        upstreams_.back().concurrency_cap.set(up.max_concurrency);
    }
    requests_ = host.counter_family("aqueduct_batches_upstream_requests_total",
                                    "Requests sent upstream, by HTTP status or the failure without one.",
                                    {"upstream", "status"});
    auto lines = host.counter_family("aqueduct_batches_lines_total", "Batch lines recorded by this host, by outcome.",
                                     {"outcome"});
    succeeded_ = lines.with({"succeeded"});
    failed_ = lines.with({"failed"});
    retried_ = lines.with({"retried"});
    cancelled_ = lines.with({"cancelled"});
    expired_ = lines.with({"expired"});
    statuses_ = host.gauge_family("aqueduct_batches", "Batches in the database, by status.", {"status"});
    for (const char* s : known_statuses) status_series_.emplace(s, statuses_.with({s}));
}

void batch_metrics::upstream_reply(std::size_t upstream, const ::batches::upstream_reply& reply,
                                   std::chrono::steady_clock::duration latency) const {
    if (!reply.started || upstream >= upstreams_.size()) return;
    upstreams_[upstream].latency.observe(std::chrono::duration<double>(latency).count());
    std::string status = reply.status > 0 ? std::to_string(reply.status) : reply.error_code;
    aq::counter c;
    {
        std::lock_guard lock(mu_);
        auto key = std::make_pair(upstream, status);
        auto it = request_series_.find(key);
        if (it == request_series_.end()) {
            try {
                it = request_series_.emplace(key, requests_.with({upstreams_[upstream].name, status})).first;
            } catch (...) {
                return;  // a refused label value loses one sample
            }
        }
        c = it->second;
    }
    c.inc();
}

void batch_metrics::lines_recorded(const std::vector<line_outcome>& outcomes,
                                   const std::vector<std::size_t>& upstreams) const {
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const line_outcome& o = outcomes[i];
        if (o.retry) {
            retried_.inc();
            if (upstreams[i] < upstreams_.size()) upstreams_[upstreams[i]].retries.inc();
        } else if (o.success) {
            succeeded_.inc();
        } else if (o.result.error_code == batch_cancelled.code) {
            cancelled_.inc();
        } else if (o.result.error_code == batch_expired.code) {
            expired_.inc();
        } else {
            failed_.inc();
        }
    }
}

void batch_metrics::upstream_concurrency_cap(std::size_t upstream, unsigned cap) const {
    if (upstream < upstreams_.size()) upstreams_[upstream].concurrency_cap.set(cap);
}

void batch_metrics::upstream_in_rotation(std::size_t upstream, bool in) const {
    if (upstream < upstreams_.size()) upstreams_[upstream].in_rotation.set(in ? 1 : 0);
}

void batch_metrics::refresh_status_counts(aq::sql::pool& pool) {
    std::vector<std::string> status(32);
    std::vector<long long> count(32);
    pool.run([&](soci::session& s) {
        s << "SELECT status, COUNT(*) FROM batches GROUP BY status", soci::into(status), soci::into(count);
    });
    std::map<std::string, long long> now;
    for (std::size_t i = 0; i < status.size(); ++i) now[status[i]] = count[i];
    for (auto& [name, series] : status_series_) {
        auto it = now.find(name);
        series.set(it == now.end() ? 0 : it->second);
    }
    for (const auto& [name, n] : now)
        if (!status_series_.contains(name)) {
            try {
                auto g = statuses_.with({name});
                g.set(n);
                status_series_.emplace(name, g);
            } catch (...) {
            }
        }
}

}  // namespace batches
