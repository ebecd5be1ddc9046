// The process metrics every Prometheus client library exports (process_start_time_seconds,
// process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
// process_max_fds), so the usual dashboards and alerts work on the gateway unchanged. Read from
// /proc and getrusage when scraped.
#pragma once

#include "metrics.hpp"

namespace aqd {

void add_process_metrics(metrics::registry& registry);

}  // namespace aqd
