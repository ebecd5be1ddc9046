// How long batches keep what they stored, enforced by the housekeeper.
//
// - A batch's per-line rows (the input bodies and the upstream responses) are dropped once its
//   output and error files are written: at once by the finalizer when
//   results_retention_seconds is 0 (the default), else here once that long has passed since
//   the batch ended. Lines left behind by a crash are dropped here as well.
// - An ended batch (completed, failed, expired, cancelled) is deleted batch_retention_seconds
//   after it ended (default 30 days); GET and list answer 404 / leave it out from then on.
//   Its output and error files are files like any other and expire on their own schedule
//   (output_expires_after).
//
// Each pass deletes a bounded amount, a slice per transaction, so it never holds SQLite's
// write lock for long; what is left is taken by the next pass.
#pragma once

#include "batch_table.hpp"
#include "config.hpp"
#include "line_queue.hpp"

namespace batches {

// One pass. Returns how many batches had their lines dropped or were deleted.
long long purge_retained(const config& cfg, batch_table& batches, line_queue& lines, long long now_s);

}  // namespace batches
