// The reference figures an S3 content store is measured against: the same bytes sent straight to
// the same server, through the same client (what the store cannot beat) and through curl (an
// independent client, to show what the client itself costs). For tests/s3/s3_raw_bench now, and
// for files_bench's "s3 store vs direct PUT/GET" ratios later.
#pragma once

#include "s3/client.hpp"

#include <cstdint>
#include <string>

namespace aqt {

struct s3_rate {
    double put_mib_s = 0;
    double get_mib_s = 0;
};

// One PUT of `bytes` streamed from memory (a repeated 1 MiB random block: one request,
// UNSIGNED-PAYLOAD, like a store streaming an upload), then one GET into a sink that drops it.
s3_rate s3_client_put_get(aq::s3::client& c, const std::string& key, std::uint64_t bytes);

// The same bytes through object_writer: multipart in part_size parts, each signed with its
// SHA-256 (what a store writing an upload of unknown length does). Returns MiB/s of the upload.
double s3_writer_put(aq::s3::client& c, const std::string& key, std::uint64_t bytes);

// curl 7.88 with --aws-sigv4: PUT of `file` (read from the page cache) and GET to /dev/null.
s3_rate s3_curl_put_get(const aq::s3::client_config& cfg, const std::string& key, const std::string& file);

// Writes `bytes` of the same repeated block to `path` (for curl's upload).
void s3_reference_file(const std::string& path, std::uint64_t bytes);

}  // namespace aqt
