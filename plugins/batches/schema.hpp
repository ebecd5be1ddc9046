// The batches plugin's tables and their migrations (component "batches" in aq_schema).
//
//   batches         one row per batch: the Batch object, its owner (an owner key since v3:
//                   "user:NAME" / "team:NAME"), a lease, and since v2 when it ended (ended_at) and
//                   whether its lines are gone (lines_purged)
//   batch_requests  one row per input line while the batch needs it: body, state, lease, result
#pragma once

#include "sql/legacy_owner.hpp"
#include "sql/migrations.hpp"
#include "sql/pool.hpp"

#include <vector>

namespace batches {

// Every migration, in order. Version 3's step rewrites bare owners with `legacy_teams` and
// reports what it did in `rewritten`. (Tests start old databases from a prefix of these.)
std::vector<aq::sql::migration> schema_migrations(const aq::sql::name_set& legacy_teams,
                                                 aq::sql::owner_rewrite& rewritten);

// Brings the tables to the latest version; several hosts starting at once migrate once. Bare
// owner names (before v3) become owner keys by sql::legacy_owner_key with `legacy_teams`.
// Returns what that rewrite did (all zero when it did not run).
aq::sql::owner_rewrite migrate_schema(aq::sql::pool& pool, const aq::sql::name_set& legacy_teams = {});

}  // namespace batches
