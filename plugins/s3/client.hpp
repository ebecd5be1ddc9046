// A blocking S3 client for one bucket: object PUT (whole or streamed), multipart upload, GET
// streamed in pieces (whole or a byte range), HEAD, DELETE, ListObjectsV2 and the listing of
// unfinished multipart uploads (for orphan cleanup). Signed with AWS Signature Version 4
// (sigv4.hpp); spoken over HTTP/1.1 keep-alive connections shared by all threads (transport.hpp).
// It runs on handler and job threads: every call blocks its caller, and any number of threads
// may call one client at once.
//
// Works with AWS S3 and with S3-compatible servers (OpenStack Swift's s3api, which the tests
// run, MinIO, Ceph RGW). Bodies are sent as plain bytes with a Content-Length, or (a streamed
// body of unknown length, to a server that takes it) with `Transfer-Encoding: chunked`: never
// `aws-chunked`, which Swift does not implement. A body held in memory (a part, a small object)
// is signed with its SHA-256 over plain http (payload_signing), so the server refuses it if it
// was corrupted on the way; over https TLS protects it. A streamed body is sent as
// UNSIGNED-PAYLOAD, since its hash is only known once it has been sent.
//
// Errors: every failure is an aq::s3::error (error.hpp), with the S3 error code, and
// whether it is retryable. Retries happen here, with exponential backoff and jitter
// (retry.hpp), on 5xx, 503 SlowDown, 400 RequestTimeout and connection failures, up to
// retry.max_attempts attempts. A request whose body is streamed from a source is retried only
// when the source can start over (body_source::restart); a source that cannot is never read
// twice, and its failure is reported as it is. A download that breaks off is resumed where it
// stopped (a ranged GET with If-Match on the first answer's ETag, so the bytes come from the
// same object version or not at all). A reused keep-alive connection that the server had
// closed is replaced at once, without costing an attempt.
//
// Consistency: S3 (since December 2020) and Swift's s3api give read-after-write for new objects
// and listings; nothing here depends on more than that. A PUT either replaces the whole object
// or leaves it as it was.
//
// No Beast or Asio in this header.
#pragma once

#include "endpoint.hpp"
#include "error.hpp"
#include "retry.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aq::s3 {

// Whether a body held in memory (a part, a small object) is sent with its signed SHA-256, so the
// server refuses it if it was corrupted on the way (BadDigest). Streamed bodies are always
// UNSIGNED-PAYLOAD. The cost, measured with 256 MiB in 8 MiB parts to Swift: the client hashes
// (~0.25 s CPU with SHA-NI) and Swift's proxy hashes again (~0.3 s CPU; AWS does it for free).
enum class payload_signing {
    unless_tls,  // over http, where nothing else protects the body; not over https, where TLS
                 // does (what AWS's SDKs do)
    always,
    never,
};

struct client_config {
    std::string endpoint;                 // "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:8080"
    std::string bucket;
    std::string region = "us-east-1";
    addressing style = addressing::path;
    std::string access_key;
    std::string secret_key;
    std::string session_token;            // temporary credentials; empty when none
    std::string ca_file;                  // extra trust anchors (PEM) for https, besides the system's

    retry_policy retry;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds io_timeout{30000};      // longest stall of any one read or write
    std::chrono::milliseconds idle_keepalive{4000};   // idle connections older than this are not reused
    std::size_t max_idle_connections = 16;
    std::size_t part_size = 8 << 20;                  // multipart part size for object_writer (>= 5 MiB)
    std::size_t parts_in_flight = 2;                  // object_writer parts uploading while the next fills (0-16)
    payload_signing signing = payload_signing::unless_tls;
    // Send streamed bodies and bodies over 1 MiB only after the server's "100 Continue", so a
    // refused request costs a round trip instead of its body. Every S3 implementation supports
    // it; turn it off only for a proxy in between that swallows the Expect header (the client
    // would then wait io_timeout for a 100 that never comes).
    bool expect_continue = true;

    // Called before each retry's wait (a log line for the operator). Thread: the caller's, or
    // an object_writer's part thread.
    std::function<void(std::string_view operation, unsigned failed_attempt, std::chrono::milliseconds delay,
                       const error& failure)>
        on_retry;
};

// Checks a config (endpoint URL, bucket name, keys, sizes); throws std::invalid_argument naming
// the setting. The client's constructor calls it.
void validate(const client_config& cfg);

struct object_info {
    std::uint64_t size = 0;          // the whole object's size
    std::string etag;                // as the server sent it, quotes included
    std::string last_modified;       // HTTP date
    std::string content_type;
};

// An inclusive byte range, as in `Range: bytes=first-last`; no `last` means to the end.
struct byte_range {
    std::uint64_t first = 0;
    std::optional<std::uint64_t> last;
};

struct get_result {
    object_info object;
    std::uint64_t first = 0;         // offset of the first byte delivered
    std::uint64_t length = 0;        // bytes delivered
};

// A request body read in pieces: read(buf, cap) fills up to cap bytes and returns how many
// (never 0 before `length` bytes were given: a source that ends early fails the call with
// std::runtime_error, and nothing is stored). `restart`, when set, rewinds the source to its
// first byte, which lets a failed attempt be retried; without it the request is not retried
// once a byte was read. An exception thrown by read (or by a body_sink) ends the call as it is.
struct body_source {
    std::uint64_t length = 0;
    // The length is not known beforehand: the body goes with `Transfer-Encoding: chunked` and
    // ends where read returns 0 (`length` is ignored). Not every S3 server takes it: AWS S3
    // wants a Content-Length; Swift's s3api and Ceph RGW take it (client::takes_chunked_puts).
    bool chunked = false;
    std::function<std::size_t(char* buf, std::size_t cap)> read;
    std::function<void()> restart;
};

using body_sink = std::function<void(std::string_view piece)>;

struct listed_object {
    std::string key;
    std::uint64_t size = 0;
    std::string etag;
    std::string last_modified;       // ISO 8601, as listed
};

struct object_page {
    std::vector<listed_object> objects;
    std::string next_continuation_token;  // "" on the last page
};

struct pending_upload {
    std::string key;
    std::string upload_id;
    std::string initiated;           // ISO 8601
};

struct upload_page {
    std::vector<pending_upload> uploads;
    std::string next_key_marker;       // both "" on the last page
    std::string next_upload_id_marker;
};

struct completed_part {
    int number = 0;                  // 1..10000
    std::string etag;                // as upload_part returned it
};

struct client_stats {
    std::uint64_t requests = 0;      // HTTP exchanges attempted
    std::uint64_t retries = 0;       // attempts after a retryable failure (each after a backoff wait)
    std::uint64_t reconnects = 0;    // immediate retries on a reused connection the server had closed
    std::uint64_t connections = 0;   // TCP connections opened
};

class client {
public:
    // Throws std::invalid_argument for a bad config; opens no connection yet.
    explicit client(client_config cfg);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    const client_config& config() const noexcept;

    // Creates the bucket; a bucket these credentials already own is fine.
    void create_bucket();

    // PUT of a whole object. Returns the ETag.
    std::string put_object(std::string_view key, std::string_view data);
    std::string put_object(std::string_view key, const body_source& source);

    // Whether the server stores a PUT whose body comes with `Transfer-Encoding: chunked`
    // (streamed_put.hpp): PUTs a few bytes that way under `probe_key`, checks their size with a
    // HEAD, and deletes the object. False when the server refuses the request (AWS: 501
    // NotImplemented or 411 MissingContentLength) or stores something else; throws when it
    // cannot be asked (the network, 5xx after retries, 403).
    bool takes_chunked_puts(std::string_view probe_key);

    object_info head_object(std::string_view key);                 // error::not_found() when absent
    // GET, the body in pieces to `sink` (pieces of at most 256 KiB; memory does not grow with the
    // object). `range` asks for part of it (416 InvalidRange when it starts past the end).
    get_result get_object(std::string_view key, const body_sink& sink, std::optional<byte_range> range = {});
    // DELETE; deleting an absent key succeeds, as in S3.
    void delete_object(std::string_view key);

    // ListObjectsV2: keys starting with `prefix`, in key order, at most max_keys (<= 1000) per page.
    object_page list_objects(std::string_view prefix, std::string_view continuation_token = {},
                             unsigned max_keys = 1000);
    // Every page at once, for cleanups.
    std::vector<listed_object> list_all_objects(std::string_view prefix);

    // Multipart upload, step by step (object_writer.hpp does all of it for a stream). Every part
    // but the last must be at least 5 MiB.
    std::string create_multipart_upload(std::string_view key);
    std::string upload_part(std::string_view key, std::string_view upload_id, int part_number,
                            std::string_view data);
    std::string upload_part(std::string_view key, std::string_view upload_id, int part_number,
                            const body_source& source);
    // Returns the object's ETag. A retry that finds the upload gone checks that the object has
    // the ETag these parts produce (the earlier attempt completed it, its answer was lost).
    std::string complete_multipart_upload(std::string_view key, std::string_view upload_id,
                                          const std::vector<completed_part>& parts);
    // Aborting an upload that no longer exists succeeds.
    void abort_multipart_upload(std::string_view key, std::string_view upload_id);
    upload_page list_multipart_uploads(std::string_view prefix, std::string_view key_marker = {},
                                       std::string_view upload_id_marker = {});

    client_stats stats() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The ETag S3 gives an object completed from these parts: the MD5 of the parts' binary MD5s,
// then "-" and the part count, in quotes. Parts whose ETag is not an MD5 give "".
std::string multipart_etag(const std::vector<completed_part>& parts);

}  // namespace aq::s3
