// The batches plugin's tables and their migrations (component "batches" in aq_schema).
//
//   batches         one row per batch: the Batch object, its owner, a lease, and since v2 when
//                   it ended (ended_at) and whether its lines are gone (lines_purged)
//   batch_requests  one row per input line while the batch needs it: body, state, lease, result
#pragma once

#include "sql/pool.hpp"

namespace batches {

// Brings the tables to the latest version; several hosts starting at once migrate once.
void migrate_schema(aq::sql::pool& pool);

}  // namespace batches
