// Content validation of a batch's input file, run by the housekeeper for batches in `validating`.
//
// Streams the file through the files service and checks it with the one validator of batch
// lines (plugins/batch_line, which the upload uses too: the same bytes get the same verdict),
// adding the batch's own rules: every url is the batch's endpoint, every model is served by an
// upstream. Memory is bounded: one line at a time plus the compact custom_id set. Accepted
// lines are staged in batch_requests a slice per short transaction while the batch stays
// `validating` (invisible to claims). At the end the batch moves to in_progress with all its
// lines in one short transaction, or to failed with errors.data [{code, message, param, line}]
// (up to 100) and its staged lines deleted. No write transaction spans the reading or parsing
// of the file. Codes: those of batch_line/validator.hpp (invalid_json_line, invalid_request,
// line_too_long, duplicate_custom_id, url_mismatch, model_not_found, empty_file,
// too_many_requests) and file_not_found (the input was deleted since create).
//
// Every step is fenced by the batch's lease: a host that lost it (stalled past lease_seconds
// while another host took over) stops without writing anything more.
#pragma once

#include "batch_table.hpp"
#include "config.hpp"
#include "line_queue.hpp"

#include "batch_line/validator.hpp"

#include <aqueduct/services/files.h>

#include <string>

namespace batches {

// The batch-line rules for a batch of this config targeting `endpoint` (limits, endpoint,
// served models, up to 100 problems); what validate_batch applies.
aq::batch_line::options line_rules_for(const config& cfg, const std::string& endpoint);

// Validates and stages the lines of batch `b`, whose lease `me` holds. Throws on storage
// failures (the lease expires and a later run retries).
void validate_batch(const config& cfg, batch_table& batches, line_queue& lines, const aq_files_v1& files,
                    const batch_work& b, const std::string& me);

}  // namespace batches
