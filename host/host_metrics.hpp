// The metrics the host publishes about itself (README, "Operating aqueduct"): requests by route,
// method and status, their durations and bytes, refused connections and requests, jobs, reloads.
// Values the host can read when scraped (open connections, requests in flight, queue depth, spool
// bytes) are sampled families registered by their owners (http_server, gateway).
#pragma once

#include "metrics.hpp"

#include <chrono>
#include <cstdint>
#include <string_view>

namespace aqd {

struct host_metrics {
    explicit host_metrics(metrics::registry& r);

    metrics::registry& registry;
    metrics::family& requests;             // aqueduct_http_requests_total{route,method,status}
    metrics::family& request_duration;     // aqueduct_http_request_duration_seconds{route,method}
    metrics::counter_series& received_bytes;  // aqueduct_http_received_bytes_total
    metrics::counter_series& sent_bytes;      // aqueduct_http_sent_bytes_total
    metrics::family& refused_connections;  // aqueduct_http_connections_refused_total{reason}
    metrics::family& refused_requests;     // aqueduct_http_requests_refused_total{reason}
    metrics::family& job_runs;             // aqueduct_job_runs_total{plugin,job}
    metrics::family& job_duration;         // aqueduct_job_duration_seconds{plugin,job}
    metrics::family& reloads;              // aqueduct_config_reloads_total{result}

    // One finished request. `route` is the route's pattern, or empty when none matched.
    void request_finished(std::string_view route, std::string_view method, int status, std::uint64_t bytes_in,
                          std::uint64_t bytes_out, std::chrono::steady_clock::duration duration);
};

// The method as a label: the standard ones as they are, anything else "other" (a client chooses
// the method, and a label must not take every value a client sends).
std::string_view method_label(std::string_view method) noexcept;

}  // namespace aqd
