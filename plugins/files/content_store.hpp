// Where the bytes of files live. Metadata stays in SQL (store.hpp); content goes to a content
// store chosen in the config (`store`), and each file's row records the store and the key its
// content has there, so a file stays readable from its store after the config names another.
//
//   filesystem   one file per content in a folder (filesystem_store.hpp); the embedded default
//   database     1 MiB chunks in the database itself (database_store.hpp)
//   s3           one object per content in an S3-compatible bucket (s3_store.hpp)
//
// The one protocol every store follows, so that a crash at any moment leaves nothing visible
// and nothing that the purge job cannot find (store.hpp carries it out):
//   1. A writer streams content somewhere that survives no crash (an unnamed file, memory, an
//      unfinished multipart upload), or calls `intent` first: the caller then records the key in
//      a row in state "writing" with a lease (expires_at) before anything named exists.
//   2. seal() makes the content durable under its key (calling `intent` first if it has not).
//   3. The caller flips the row to "ready" in one short transaction: the file becomes visible.
// A writer that dies between 1 and 3 leaves a "writing" row whose lease runs out; the purge job
// then removes the content at its key (remove(key, abandoned = true)) and the row. Deletes and
// expiry go the same way: the row turns "deleting", the content is removed, the row goes.
//
// Every method may be called from any thread; readers and writers are used by one thread at a
// time. Failures throw: content_gone when the content is not (or no longer) where the row says,
// content_unavailable when the store cannot be reached, sql::unavailable when the database store
// cannot reach its database, std::exception otherwise.
#pragma once

#include "file_record.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace soci {
class session;
}

namespace aq::files {

struct content_gone : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The store cannot be reached now (an S3 endpoint that does not answer, throttles or fails with
// 5xx after the client's retries); a request answers 503 store_unavailable with retry-after.
struct content_unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class content_store;

class content_writer {
public:
    // An unsealed writer discards what it wrote (best effort: what it cannot remove, the purge
    // finds through the row `intent` recorded).
    virtual ~content_writer() = default;
    virtual void write(std::string_view data) = 0;
    // Appends the whole content of `part` (held by `from`) without its bytes passing through
    // this process, when the store can (the Uploads API joining parts, uploads.hpp): the
    // filesystem store copies in the kernel (copy_file_range), the database store copies chunks
    // inside the database. False, having appended nothing, when it cannot: the caller streams
    // the part through write() instead. `last`: nothing is written after it (a store of
    // fixed-size chunks takes a part that ends mid-chunk only then). Throws content_gone when
    // the part's content is not there.
    virtual bool append(content_store& from, const file_record& part, bool last) {
        (void)from;
        (void)part;
        (void)last;
        return false;
    }
    // Makes the content durable under its key; afterwards only remove() takes it away.
    virtual void seal() = 0;
    // The longest this writer may wait for bytes it has been given (0: as long as the caller
    // likes). A store that keeps a request open while the content arrives (the s3 store's
    // streamed PUT: Swift drops a request body that stalls for 60 s, AWS after about 20) asks
    // for whatever came, however little, at least this often, so a slow client's upload does
    // not stall it.
    virtual std::int64_t max_wait_seconds() const noexcept { return 0; }
};

class content_reader {
public:
    virtual ~content_reader() = default;
    // Up to buf.size() bytes of the range it was opened for; 0 at its end. Throws content_gone.
    virtual std::size_t read(std::span<char> buf) = 0;
    // An open descriptor of a regular file holding the content at the offsets the row gives
    // (for sendfile), which the caller then owns; -1 when the store has no such file.
    virtual int release_file() { return -1; }
};

class content_store {
public:
    virtual ~content_store() = default;

    // "filesystem", "database" or "s3": what rows record.
    virtual std::string_view name() const noexcept = 0;

    // A new content under `key` (a file id, or a file id and a suffix for a move), of at most
    // `max_bytes` (the caller's limit, which its writes never pass: a store may pick how to
    // write by it; the s3 store streams one PUT up to S3's 5 GiB). `intent` is called once, on
    // the writer's thread, before the writer creates anything a crash would leave behind; it may
    // throw, which fails the write.
    virtual std::unique_ptr<content_writer> create(const std::string& key, std::uint64_t max_bytes,
                                                   std::function<void()> intent) = 0;

    // Reads `length` bytes from `offset` of the content of `file` (its content_key; file.bytes
    // is the whole content's size). Throws content_gone when it is not there.
    virtual std::unique_ptr<content_reader> open(const file_record& file, std::uint64_t offset,
                                                 std::uint64_t length) = 0;

    // Removes the content at `key`; absent content is fine. `abandoned`: the writer died before
    // its row was flipped, so the content may be unfinished (an S3 multipart upload). Throws when
    // the store cannot be reached (the purge tries again later).
    virtual void remove(const std::string& key, bool abandoned) = 0;

    // The key the content written under `key` keeps once the file `file_id` takes it over, in
    // the transaction (`session`) that switches the file's row to it (a move between stores).
    // Stores whose keys are unique keep them; the database store re-keys its chunks.
    virtual std::string adopt(soci::session& session, const std::string& key, const std::string& file_id) {
        (void)session;
        (void)file_id;
        return key;
    }
};

}  // namespace aq::files
