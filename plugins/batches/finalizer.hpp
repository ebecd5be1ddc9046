// Ends batches: completed (every line done), expired (past the completion window: unrun lines
// become batch_expired), cancelled (after a cancel, once no line runs under a live lease: unrun
// lines become batch_cancelled). Writes the output and error files in input order through the
// files service (purpose batch_output, owned by the batch's owner), then records the terminal
// status.
//
// Works under the batch's lease, kept alive by the heartbeat. Only the lease holder's final
// UPDATE commits (fencing): a host that stalled past its lease while another finished the batch
// finds its UPDATE refused and deletes the files it had committed, so a batch ends with exactly
// one output file and one error file. A finalizer that dies leaves the batch in `finalizing`
// and another run takes it over once the lease expires.
//
// With results_retention_seconds 0 the batch's lines are dropped as soon as its files are
// recorded; otherwise the housekeeper's purge drops them later.
#pragma once

#include "batch_table.hpp"
#include "config.hpp"
#include "heartbeat.hpp"
#include "line_queue.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

#include <string>

namespace batches {

// Finalizes every batch that is ready, under leases of hb.me().
void finalize_ready(aq::host host, const config& cfg, batch_table& batches, line_queue& lines,
                    const aq_files_v1& files, heartbeat& hb);

// One line of an output or error file (with the trailing newline).
std::string result_line(const result_row& r);

}  // namespace batches
