// Content validation of a batch's input file, run by the housekeeper for batches in `validating`.
//
// Streams the file through the files service (bounded memory: one line at a time plus the set
// of custom_ids), checks every line, and stages the lines in batch_requests a slice per short
// transaction while the batch stays `validating` (invisible to claims). At the end the batch
// moves to in_progress with all its lines in one short transaction, or to failed with
// errors.data [{code, message, param, line}] and its staged lines deleted. No write
// transaction spans the reading or parsing of the file. Codes: invalid_json_line,
// invalid_request (a field of a line has the wrong shape), duplicate_custom_id, url_mismatch,
// model_not_found, empty_file, too_many_requests, file_not_found (deleted since create).
//
// Every step is fenced by the batch's lease: a host that lost it (stalled past lease_seconds
// while another host took over) stops without writing anything more.
#pragma once

#include "batch_table.hpp"
#include "config.hpp"
#include "line_queue.hpp"

#include <aqueduct/services/files.h>

#include <string>

namespace batches {

// Validates and stages the lines of batch `b`, whose lease `me` holds. Throws on storage
// failures (the lease expires and a later run retries).
void validate_batch(const config& cfg, batch_table& batches, line_queue& lines, const aq_files_v1& files,
                    const batch_work& b, const std::string& me);

}  // namespace batches
