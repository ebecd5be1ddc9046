// The s3 content store: one object per content in a bucket of any S3-compatible object store
// (content_store.hpp), under `prefix` + key. A thin adapter over plugins/s3 (SigV4, retries with
// backoff on 5xx, 503 SlowDown and connection failures, multipart upload, ranged GET).
//
// Writes: an object_writer collects up to part_bytes in memory; a content that fits is stored
// with one PUT at seal(). A larger one, when the server takes a streamed PUT (asked once at
// start: large_objects "auto") and the content cannot pass 5 GiB, goes on as that one PUT,
// ended at seal() (half of a multipart upload's work for Swift, and a plain object to read
// back); otherwise as a multipart upload whose parts go up while the next fills
// (parts_in_flight), completed at seal(). A streamed PUT that breaks off stores nothing.
// `intent` is called before the first request (the streamed PUT, the multipart upload's
// creation, or the single PUT), so the purge knows every key that may hold something: an
// unfinished writer's streamed PUT is broken off and its multipart upload aborted when it is
// destroyed, and whatever a crash leaves (an unfinished multipart upload, an object whose row
// never turned "ready") is removed by the purge once the row's lease runs out (remove(key, abandoned):
// DELETE, and abort of the key's unfinished uploads). sweep_uploads() also aborts unfinished
// uploads older than the grace period that no live writer holds (a CreateMultipartUpload that a
// retry duplicated).
//
// Reads stream through a ring buffer (1 MiB, allocated once per reader) that one GET fills from a
// thread of its own while the reader empties it. When the reader stops taking bytes (a client that reads slowly or
// not at all) the GET ends after a second and nothing but the buffer is held; the next read
// resumes with a ranged GET from where it stopped. A ranged download asks S3 for that range only.
//
// What it assumes of S3 (AWS since December 2020, Swift's s3api on one cluster): read-after-write
// for new objects, and an object that appears whole when its PUT or CompleteMultipartUpload
// returns. Keys are never reused: an upload's key is its file id, a move's a fresh suffix of it.
#pragma once

#include "config.hpp"
#include "content_store.hpp"

#include "s3/client.hpp"

#include <chrono>
#include <functional>

namespace aq::files {

class s3_store : public content_store {
public:
    // Told of each retried request: a line for the log, and the kind of failure it retries (for
    // the metrics). Called on the thread that made the request.
    using retry_report = std::function<void(const std::string& line, aq::s3::error_kind kind)>;

    // Builds the client and checks that the bucket answers (one listing of at most one key).
    // Throws std::invalid_argument for bad settings, std::runtime_error when the bucket cannot
    // be reached. `on_retry` may be empty.
    s3_store(const s3_settings& settings, retry_report on_retry);

    std::string_view name() const noexcept override { return "s3"; }
    std::unique_ptr<content_writer> create(const std::string& key, std::uint64_t max_bytes,
                                           std::function<void()> intent) override;
    std::unique_ptr<content_reader> open(const file_record& file, std::uint64_t offset, std::uint64_t length) override;
    void remove(const std::string& key, bool abandoned) override;

    // Aborts unfinished multipart uploads under the prefix that began more than `grace` ago and
    // whose key `live` does not claim. Returns how many it aborted.
    std::size_t sweep_uploads(std::chrono::seconds grace, const std::function<bool(const std::string& key)>& live);

    // Contents of at most this many bytes go up as one streamed PUT when the server takes it:
    // S3's limit for a single PUT.
    static constexpr std::uint64_t max_streamed_bytes = 5ull << 30;
    // Whether the server took the probe's streamed PUT at start (and large_objects is "auto").
    bool streams_large_contents() const noexcept { return streams_; }

    aq::s3::client& client() noexcept { return client_; }
    // The object key of a content key.
    std::string object_key(const std::string& key) const { return prefix_ + key; }

private:
    friend class s3_writer;
    aq::s3::client client_;
    std::string prefix_;
    bool streams_ = false;
};

}  // namespace aq::files
