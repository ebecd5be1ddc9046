// A plugin's database pool in its metrics: how often a lease had to wait for a free session,
// with what outcome, and for how long. Names carry the plugin's prefix (metric names are
// distinct across plugins): <prefix>_db_pool_waits_total{outcome="leased|timed_out"} and the
// histogram <prefix>_db_pool_wait_seconds. A lease that found a free session at once is not a
// wait and counts in neither.
#pragma once

#include "sql/pool.hpp"

#include <aqueduct/plugin.hpp>

#include <string_view>

namespace aq::sql {

// Registers the metrics (in init) and sets options.on_wait to update them.
void count_pool_waits(const aq::host& host, std::string_view prefix, pool_options& options);

}  // namespace aq::sql
