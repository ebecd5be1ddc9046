// The purge job: deletes expired files and their chunks in bounded batches.
//
// Visibility never depends on it (every query filters expires_at > now); it only reclaims space.
// Each batch is its own short transaction of at most expiry_batch_size files, so a purge never
// holds locks for long; on PostgreSQL, hosts running it at once skip each other's rows.
#pragma once

#include "config.hpp"
#include "metrics.hpp"
#include "store.hpp"

#include <aqueduct/plugin.hpp>

namespace aq::files {

void register_expiry(aq::host& host, const config& cfg, store& files, const files_metrics& metrics);

}  // namespace aq::files
