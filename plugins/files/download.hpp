// GET /files/{file_id}/content: the stored bytes, streamed chunk by chunk from the store.
//
// Content-Length, Content-Type application/octet-stream, Content-Disposition (content_disposition),
// ETag = the quoted sha256, Accept-Ranges: bytes. One Range (byte_range) answers 206 with
// Content-Range, or 416 with "Content-Range: bytes */size"; If-Range with another ETag sends
// the whole file. The body is pulled by the host (respond_source) chunk by chunk as the client
// reads: memory is one chunk, and a client that reads slowly or not at all holds no thread.
#pragma once

#include "store.hpp"

#include <aqueduct/plugin.hpp>

namespace aq::files {

void download(aq::request& req, store& files);

}  // namespace aq::files
