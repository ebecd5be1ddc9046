// The Uploads API's routes (uploads.hpp has the model): POST /uploads, POST
// /uploads/{upload_id}/parts, POST /uploads/{upload_id}/complete, POST
// /uploads/{upload_id}/cancel. The host also serves each under /v1. Request bodies are checked
// here, field by field, before the model is asked anything.
#pragma once

#include "config.hpp"
#include "store.hpp"
#include "uploads.hpp"

#include <aqueduct/plugin.hpp>

#include <cstdint>

namespace aq::files {

// POST /uploads: JSON {bytes, filename, mime_type, purpose, expires_after?}.
void create_upload(aq::request& req, const config& cfg, uploads& ups);
// POST /uploads/{upload_id}/parts: multipart/form-data with the part in field `data`, streamed
// into the current content store (at most uploads::max_part_bytes). Returns the part's bytes.
std::uint64_t add_upload_part(aq::request& req, store& files, uploads& ups);
// POST /uploads/{upload_id}/complete: JSON {part_ids, md5?}.
void complete_upload(aq::request& req, uploads& ups);
// POST /uploads/{upload_id}/cancel
void cancel_upload(aq::request& req, uploads& ups);

// "Part is too large: the limit is 67108864 bytes."
std::string part_too_large_message();

}  // namespace aq::files
