// Ends batches: completed (every line done), expired (past the completion window: unrun lines
// become batch_expired), cancelled (after a cancel, once no line runs under a live lease: unrun
// lines become batch_cancelled). Writes the output and error files in input order through the
// files service (purpose batch_output, owned by the batch's owner), then records the terminal
// status. Holds the batch's lease while it works, so two hosts never finalize one batch; a
// finalizer that dies leaves the batch in `finalizing` and another run takes it over.
#pragma once

#include "config.hpp"
#include "store.hpp"

#include <aqueduct/services/files.h>

#include <string>

namespace batches {

// Finalizes every batch that is ready. `me` identifies this host's leases.
void finalize_ready(const config& cfg, store& db, const aq_files_v1& files, const std::string& me);

// One line of an output or error file (with the trailing newline).
std::string result_line(const result_row& r);

}  // namespace batches
