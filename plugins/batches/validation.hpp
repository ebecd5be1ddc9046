// Content validation of a batch's input file, run by the runner for batches in `validating`.
//
// Streams the file through the files service (bounded memory: one line at a time plus the set
// of custom_ids), checks every line, and copies the lines into batch_requests in one write
// transaction: the batch moves to in_progress with all its lines stored, or to failed with
// errors.data [{code, message, param, line}] and nothing stored. Codes: invalid_json_line,
// invalid_request (a field of a line has the wrong shape), duplicate_custom_id, url_mismatch,
// model_not_found, empty_file, too_many_requests, file_not_found (deleted since create).
#pragma once

#include "config.hpp"
#include "store.hpp"

#include <aqueduct/services/files.h>

namespace batches {

// Validates and stores the lines of batch `b`, whose lease this host holds. Throws on storage
// failures (the lease expires and another run retries).
void validate_batch(const config& cfg, store& db, const aq_files_v1& files, const batch_work& b);

}  // namespace batches
