// POST /files: a multipart/form-data upload streamed into the store.
//
// Body (spooled by the host) -> multipart parser -> (batch validator) -> store writer (into the
// current content store): nothing is buffered beyond a read buffer, the parser's tail and what
// the content store holds (a 1 MiB chunk, an S3 part), whatever the size.
// Fields come in any order (the Node SDK sends `file` before `purpose`): when the purpose is not
// known yet while the file streams, the batch validation runs anyway and its verdict is applied
// once the purpose is known. Any error destroys the writer, which removes what it wrote: nothing
// of a refused upload becomes visible.
#pragma once

#include "config.hpp"
#include "store.hpp"

#include "batch_line/validator.hpp"

#include <aqueduct/plugin.hpp>

namespace aq::files {

// Extra body bytes beyond max_file_bytes that the route accepts for the multipart framing and
// the other fields; the file part itself is held to max_file_bytes exactly.
constexpr std::uint64_t multipart_overhead_bytes = 1 << 20;

// Returns the bytes of the file stored.
std::uint64_t upload(aq::request& req, const config& cfg, store& files);

// "File is too large: the limit is N bytes." — one wording for every place that refuses one.
std::string too_large_message(const config& cfg);

// Why a purpose is refused for an upload (not one of cfg.purposes, or "batch_output"), or empty.
std::string purpose_problem(const config& cfg, const std::string& purpose);

// The batch validator's settings for an uploaded batch file (direct or through the Uploads API).
batch_line::options batch_validation(const config& cfg, const store& files);

// Why a filename is refused, or empty when it is acceptable: non-empty, at most 255 bytes,
// UTF-8, no path separators, quotes or control characters.
std::string filename_problem(std::string_view filename);

}  // namespace aq::files
