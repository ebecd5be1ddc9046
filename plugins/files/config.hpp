// The files plugin's settings (`plugins.files` in the config file), validated at init.
//
//   database                 URL, given by the host (defaults to the host's database)
//   max_file_bytes           largest accepted file, default 512 MiB
//   max_output_file_bytes    largest file the gateway writes itself (batch output and error files,
//                            through the files service), default 4 GiB
//   max_line_bytes           longest line of a batch file, default 16 MiB
//   max_requests_per_file    most requests (non-blank lines) in a batch file, default 50,000
//   purposes                 purposes accepted on upload, default ["batch"] ("batch_output" never)
//   default_expiry_seconds   lifetime of a file without expires_after, default 7 days
//   max_expiry_seconds       cap on expires_after[seconds], default 30 days
//   quota_bytes, quota_files per-owner storage quota, 0 = unlimited (the default)
//   expiry_interval_seconds  how often the purge job runs, default 60
//   expiry_batch_size        files purged per transaction, default 20
//   pool_size                database sessions, default 8 (a staged upload holds one during its
//                            commit, a download one per chunk, a PostgreSQL upload streaming into
//                            its transaction one throughout)
//   upload_sessions          of those, how many PostgreSQL uploads may hold while they stream,
//                            default pool_size / 2 (the others stage and commit at the end)
//   session_wait_ms          longest a request waits for a free session, then 503
//                            database_unavailable; default 5000
//   legacy_team_owners       bare owner names of rows written before owner keys carried their
//                            kind that were teams; the migration to schema 2 makes them
//                            "team:NAME", every other name "user:NAME" (sql/legacy_owner.hpp)
//
// Errors throw std::invalid_argument naming the key: "plugins.files.max_file_byte: unknown key".
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace aq::files {

struct config {
    std::string database;
    std::uint64_t max_file_bytes = 512ull << 20;
    std::uint64_t max_output_file_bytes = 4ull << 30;
    std::uint64_t max_line_bytes = 16ull << 20;
    std::uint64_t max_requests_per_file = 50000;
    std::set<std::string> purposes{"batch"};
    std::int64_t default_expiry_seconds = 7 * 24 * 3600;
    std::int64_t max_expiry_seconds = 30 * 24 * 3600;
    std::uint64_t quota_bytes = 0;
    std::uint64_t quota_files = 0;
    std::uint32_t expiry_interval_seconds = 60;
    std::uint32_t expiry_batch_size = 20;
    std::uint32_t pool_size = 8;
    std::optional<std::uint32_t> upload_sessions;  // unset: pool_size / 2
    std::uint32_t session_wait_ms = 5000;
    std::set<std::string, std::less<>> legacy_team_owners;

    // Bounds a client may ask for with expires_after[seconds] (API.md).
    static constexpr std::int64_t min_expires_after = 3600;
    static constexpr std::int64_t max_expires_after = 2592000;

    static config parse(const boost::json::object& section);
};

}  // namespace aq::files
