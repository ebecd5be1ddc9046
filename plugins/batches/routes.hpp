// The Batch API routes: POST/GET /batches, GET /batches/{batch_id},
// POST /batches/{batch_id}/cancel (the host adds the /v1 twins). Create validates everything it
// can synchronously (fields, metadata limits, the input file through the files service, the
// owner's active-batch limit); the content of the file is validated by the runner.
#pragma once

#include "config.hpp"
#include "batch_table.hpp"
#include "halted_batches.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

namespace batches {

void register_routes(aq::host& host, const config& cfg, batch_table& db, halted_batches& halted,
                     const aq_files_v1& files);

}  // namespace batches
