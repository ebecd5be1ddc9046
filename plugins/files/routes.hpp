// The Files API routes (API.md): POST/GET /files, GET/DELETE /files/{file_id},
// GET /files/{file_id}/content, and the Uploads API's (upload_routes.hpp). The host also serves
// each under /v1.
#pragma once

#include "config.hpp"
#include "metrics.hpp"
#include "store.hpp"
#include "uploads.hpp"

#include <aqueduct/plugin.hpp>

namespace aq::files {

void register_routes(aq::host& host, const config& cfg, store& files, uploads& ups, const files_metrics& metrics);

// GET /files: purpose, limit (1..10000, default 10000), order (asc|desc, default desc), after.
void list(aq::request& req, store& files);
// GET /files/{file_id}
void retrieve(aq::request& req, store& files);
// DELETE /files/{file_id}
void remove(aq::request& req, store& files);

}  // namespace aq::files
