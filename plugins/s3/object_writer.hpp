// Streams bytes of unknown total size into one S3 object, in constant memory.
//
// Bytes are pushed with write() as they arrive (an upload handler's body pieces) and collected
// into one part-sized buffer (client_config::part_size, 8 MiB by default). An object that fits in
// that buffer is stored with a single PUT at finish(); a larger one becomes a multipart upload:
// the upload starts when the buffer first overflows, each full buffer is sent as one part (held
// in memory, so it carries its checksum and is retried like any request), and finish()
// sends the rest as the last part and completes the upload.
//
// Or, given large_objects::streamed (for a server that takes it, client::takes_chunked_puts),
// an object that outgrows the buffer goes up as one PUT of unknown length (streamed_put.hpp):
// the buffer is its first block, and later writes follow it through a queue of at most a
// part's size. One PUT costs a server like Swift half of what a multipart upload does, and
// keeps the object plain for reads; but a PUT has a 5 GiB limit in S3, and one that breaks off
// after its first bytes cannot be retried. So the caller chooses it for objects known to stay
// below that limit.
//
// Parts go up while the caller fills the next buffer: up to client_config::parts_in_flight parts
// upload at once, each on its own short-lived thread, so the producer (a client sending its
// upload) and the store's round trips overlap instead of taking turns. Memory is
// (parts_in_flight + 1) part buffers whatever the object's size; a writer that never leaves one
// part (most files) uses one buffer, no thread, and one request.
//
// Nothing is visible under the key before finish() returns. A failure, abort(), or destroying the
// writer unfinished aborts the multipart upload (best effort: what an abort could not remove,
// client::list_multipart_uploads finds for a cleanup). After a failure the writer is `failed` and
// refuses further writes.
#pragma once

#include "client.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <future>
#include <string>
#include <string_view>
#include <vector>

namespace aq::s3 {

class streamed_put;

// How object_writer stores an object larger than one part.
enum class large_objects {
    multipart,  // parts of part_size, parts_in_flight at once: every S3 server, up to 5 TiB
    streamed,   // one PUT with Transfer-Encoding: chunked: servers that take it, up to 5 GiB
};

class object_writer {
public:
    enum class state {
        buffering,   // everything written so far fits one part; nothing sent yet
        uploading,   // a multipart upload is under way
        streaming,   // a streamed PUT is under way
        finished,    // the object exists
        aborted,     // abort() was called; nothing stored
        failed,      // a request failed; the upload was aborted
    };

    object_writer(client& c, std::string key, large_objects large = large_objects::multipart);
    ~object_writer();
    object_writer(const object_writer&) = delete;
    object_writer& operator=(const object_writer&) = delete;

    void write(std::string_view data);
    // Reads `read` until it returns 0, writing everything. Returns the bytes read.
    std::uint64_t write_from(const std::function<std::size_t(char* buf, std::size_t cap)>& read);
    // Stores the object; returns its ETag.
    std::string finish();
    void abort() noexcept;

    state current() const noexcept { return state_; }
    std::uint64_t size() const noexcept { return size_; }
    int parts_sent() const noexcept { return next_part_ - 1; }
    const std::string& upload_id() const noexcept { return upload_id_; }

private:
    struct part_in_flight {
        int number = 0;
        std::string data;
        std::future<std::string> etag;  // from the thread that uploads it
    };

    void overflow();  // the buffer is full and more comes: a part, or the stream's first block
    void send_part();
    void collect_oldest();
    void wait_all() noexcept;
    void require_open(const char* what) const;
    template <class Fn>
    auto guarded(Fn&& fn) -> decltype(fn());

    client& client_;
    std::string key_;
    std::size_t part_size_;
    std::string buffer_;
    std::string upload_id_;
    std::size_t max_in_flight_;
    std::deque<part_in_flight> flying_;   // in part order; references stay valid while queued
    std::vector<std::string> spare_;      // buffers of uploaded parts, for reuse
    std::vector<completed_part> parts_;   // uploaded, in order
    large_objects large_;
    std::unique_ptr<streamed_put> stream_;  // while streaming
    int next_part_ = 1;
    std::uint64_t size_ = 0;
    state state_ = state::buffering;
};

}  // namespace aq::s3
