// GET /files/{file_id}/content: the stored bytes, from the file's content store.
//
// Content-Length, Content-Type application/octet-stream, Content-Disposition (content_disposition),
// ETag = the quoted sha256, Accept-Ranges: bytes. One Range (byte_range) answers 206 with
// Content-Range, or 416 with "Content-Range: bytes */size"; If-Range with another ETag sends
// the whole file.
//
// A file in the filesystem store is handed to the host as an open descriptor (respond_file): the
// host sends it with sendfile(2), range or not, and no plugin thread or buffer is involved. Other
// stores' content is pulled by the host (respond_source) as the client reads: memory is what the
// store's reader holds (one 1 MiB database chunk, at most 1 MiB of an S3 GET), and a client that
// reads slowly or not at all holds no thread.
#pragma once

#include "store.hpp"

#include <aqueduct/plugin.hpp>

namespace aq::files {

void download(aq::request& req, store& files);

}  // namespace aq::files
