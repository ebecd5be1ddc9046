// One PUT of an object whose size is not known when it starts, fed by pushes: the body goes with
// `Transfer-Encoding: chunked` (client::takes_chunked_puts tells whether the server takes it)
// from a thread of its own, while the caller pushes the next bytes.
//
// Why not always multipart: a server such as Swift's s3api stores a multipart upload as a
// segmented object, and pays for it twice, once per part on the way in (a segment object, a
// container update, the upload's checks; measured in plugins/s3/README.md at about twice the CPU
// of one PUT) and again on every read (the proxy checks each segment's MD5 as it streams it). One
// streamed PUT costs it what a plain PUT costs. The price: a PUT that breaks off after some bytes
// went cannot be retried (they are not kept), where a multipart upload retries one part.
//
// Nothing is stored until finish() returns: cancel(), a failure, or the process's death ends
// the body without its last chunk, which to the server is a request that broke off, and it keeps
// nothing (the tests check this against Swift). At most `queue_limit` bytes wait between push()
// and the socket; push() waits for room, so a slow server slows the producer instead of growing
// the queue.
#pragma once

#include "client.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aq::s3 {

class streamed_put {
public:
    // Starts the PUT of `key`.
    streamed_put(client& c, std::string key, std::size_t queue_limit);
    ~streamed_put() { cancel(); }
    streamed_put(const streamed_put&) = delete;
    streamed_put& operator=(const streamed_put&) = delete;

    // An empty string to fill and push(): the storage of a block already sent when there is one
    // (a fresh 1 MiB string costs a page fault per 4 KiB; a reused one does not).
    std::string spare();
    // Queues `block` (moved in, not copied). Throws the PUT's failure once it has failed.
    void push(std::string block);
    // Ends the body and waits for the answer: returns the object's ETag, or throws the failure.
    std::string finish();
    // Breaks the PUT off (if it is still going) and waits for its thread. Never throws.
    void cancel() noexcept;

private:
    std::size_t take(char* buf, std::size_t cap);  // the PUT's thread: the next bytes of the body
    void run();

    client& client_;
    const std::string key_;
    const std::size_t queue_limit_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::string> queued_;
    std::size_t queued_bytes_ = 0;
    std::size_t front_taken_ = 0;      // bytes of queued_.front() already sent
    std::vector<std::string> spares_;  // sent blocks, for spare()
    enum class feed { open, ended, cancelled } feed_ = feed::open;  // the producer's side
    enum class put { running, stored, failed } put_ = put::running; // the PUT's thread's side
    std::exception_ptr failure_;
    std::string etag_;
    std::thread thread_;
};

}  // namespace aq::s3
