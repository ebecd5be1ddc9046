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
//   pool_size                database sessions, default 8 (each request borrows one per statement
//                            or short transaction; content written into the database store
//                            borrows one per 1 MiB chunk)
//   upload_sessions          of those, how many may be writing content chunks at once (database
//                            store), default pool_size / 2, at least 1; the rest always serve short
//                            requests
//   session_wait_ms          longest a request waits for a free session, then 503
//                            database_unavailable; default 5000
//   store                    where new files' bytes go: "filesystem", "database" or "s3"; default
//                            "filesystem" with a sqlite: database, "database" with PostgreSQL
//                            (content_store.hpp). Each file's row records its store, so files
//                            written before a change stay readable from where they are.
//   filesystem               {"path": absolute folder (default: "files" beside a sqlite:
//                            database), "fsync": true}
//   s3                       {"endpoint", "bucket", "region" ("us-east-1"), "addressing" ("path" |
//                            "virtual_host", default "virtual_host"), "access_key", "secret_key",
//                            "session_token" (""), "ca_file" (""), "prefix" ("files/"),
//                            "part_bytes" (8 MiB, at least 5 MiB), "parts_in_flight" (2),
//                            "max_attempts" (4), "payload_signing" ("unless_tls" | "always" |
//                            "never", default "unless_tls": see s3/client.hpp), "large_objects"
//                            ("auto" | "multipart", default "auto": one streamed PUT for
//                            contents up to 5 GiB when the server takes it, s3/streamed_put.hpp)};
//                            credentials
//                            usually "${ENV}"
//   orphan_grace_seconds     an unfinished write (an upload, a service write, a move between
//                            stores) that shows no life for this long is abandoned: the purge job
//                            removes what it wrote; default 600 (a live writer renews every third
//                            of it)
//   max_upload_bytes         largest file made by the Uploads API (uploads.hpp), default 8 GiB;
//                            each part is at most 64 MiB, whatever this says
//   upload_expiry_seconds    how long an Upload takes parts before it expires, default 3600 (as
//                            OpenAI's); a short one is for tests
//   legacy_team_owners       bare owner names of rows written before owner keys carried their
//                            kind that were teams; the migration to schema 2 makes them
//                            "team:NAME", every other name "user:NAME" (sql/legacy_owner.hpp)
//
// Errors throw std::invalid_argument naming the key: "plugins.files.max_file_byte: unknown key".
#pragma once

#include "s3/client.hpp"  // aq::s3::payload_signing (no Beast or Asio)

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace aq::files {

// The filesystem store's settings.
struct filesystem_settings {
    std::string path;    // absolute; empty when no filesystem store is configured
    bool fsync = true;   // fdatasync each file and fsync its folder before its row commits
};

// The s3 store's settings (the client's own checks run when the store opens: s3_store.hpp).
struct s3_settings {
    std::string endpoint, bucket, region = "us-east-1";
    bool path_style = false;  // "addressing": "path"; AWS's default is virtual_host
    std::string access_key, secret_key, session_token, ca_file;
    std::string prefix = "files/";
    std::uint64_t part_bytes = 8ull << 20;
    std::uint32_t parts_in_flight = 2;
    std::uint32_t max_attempts = 4;
    aq::s3::payload_signing payload_signing = aq::s3::payload_signing::unless_tls;
    // How a content larger than a part goes up (s3/object_writer.hpp): `automatic` asks the
    // server at start whether it takes a streamed PUT (client::takes_chunked_puts) and streams
    // contents that cannot pass 5 GiB if it does, unless payload_signing is "always" (a
    // streamed body is never signed); `multipart` never asks.
    enum class large_contents { automatic, multipart } large = large_contents::automatic;
};

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
    std::string store;                             // "filesystem" | "database" | "s3" (resolved)
    filesystem_settings filesystem;
    std::optional<s3_settings> s3;                 // set when the s3 store is configured
    std::uint32_t orphan_grace_seconds = 600;
    std::uint64_t max_upload_bytes = 8ull << 30;
    std::int64_t upload_expiry_seconds = 3600;

    // The stores this config can read: "database" always, "filesystem" when it has a path, "s3"
    // when configured. New files go to `store`, which is one of them.
    std::set<std::string, std::less<>> readable_stores() const;

    // Bounds a client may ask for with expires_after[seconds] (API.md).
    static constexpr std::int64_t min_expires_after = 3600;
    static constexpr std::int64_t max_expires_after = 2592000;

    static config parse(const boost::json::object& section);
};

}  // namespace aq::files
