// The fencing check of a batch lease, for transactions that write lines under it (staging a
// batch's lines, closing its unrun lines). Internal to batch_table.cpp and line_queue.cpp.
//
// A no-op UPDATE of the batch row, not a SELECT: on PostgreSQL it takes the row lock, so a host
// taking the lease over (an UPDATE of the same row) waits until this transaction ends and then
// sees its outcome; on SQLite the transaction already holds the single write lock. Either way,
// the caller's writes commit only while `me` holds the lease.
#pragma once

#include <soci/soci.h>

#include <string>

namespace batches {

inline bool holds_lease(soci::session& sql, const std::string& batch_id, const std::string& me) {
    soci::statement st = (sql.prepare << "UPDATE batches SET lease_until = lease_until WHERE id = :id AND lease_owner = :me",
                          soci::use(batch_id), soci::use(me));
    st.execute(true);
    return st.get_affected_rows() == 1;
}

}  // namespace batches
