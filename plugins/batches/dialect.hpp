// What SQLite and PostgreSQL do differently for the batches tables: one clause of the claim.
// Every other statement is the same text on both backends. (A later change moves this into a
// dialect of plugins/sql, beside the write transaction that differs the same way.)
#pragma once

#include "sql/pool.hpp"

namespace batches {

// Appended to the SELECT that picks the lines a claim takes.
//
// PostgreSQL: several hosts claim at once under READ COMMITTED; SKIP LOCKED makes each one pass
// over rows another claim has locked, so no two hosts take the same line and none waits.
// SQLite: nothing to add, the claim's BEGIN IMMEDIATE already admits one writer at a time.
inline const char* claim_row_lock(aq::sql::backend kind) noexcept {
    return kind == aq::sql::backend::postgresql ? " FOR UPDATE SKIP LOCKED" : "";
}

}  // namespace batches
