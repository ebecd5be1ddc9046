// SHA-256 of an upload's content, computed on a thread of its own beside the upload.
//
// Hashing is a quarter of an upload's CPU (issue 9's profile: SHA-256 beside validation and
// the kernel's copies), and it is the one part that needs nothing from the rest: so once a
// content is larger than one block, the blocks go to a hashing thread while the handler goes on
// parsing, validating and storing the next ones. A content of at most one block (most
// uploads) is hashed inline and never starts a thread.
//
// Memory: at most `blocks_in_flight` blocks of `block_bytes` (4 MiB in all); update() waits
// when the thread is that far behind, so a slow hasher slows the upload instead of growing it.
#pragma once

#include "sha256.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace aq::files {

class pipelined_sha256 {
public:
    static constexpr std::size_t block_bytes = 1 << 20;
    static constexpr std::size_t blocks_in_flight = 4;

    pipelined_sha256() = default;
    ~pipelined_sha256();  // stops and joins the thread; the digest is dropped
    pipelined_sha256(const pipelined_sha256&) = delete;
    pipelined_sha256& operator=(const pipelined_sha256&) = delete;

    void update(std::string_view data);
    // Lowercase hex digest of everything updated; the object cannot be updated afterwards.
    // Rethrows what failed on the hashing thread.
    std::string hex();

private:
    void hand_over();  // queues `filling_` (starting the thread the first time)
    void run();

    sha256 hash_;             // the thread's once it started
    std::string filling_;     // the block being filled, on the caller's thread
    std::thread thread_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::string> queued_;  // full blocks the thread has not hashed yet
    std::deque<std::string> spare_;   // hashed blocks, kept to be filled again
    bool closing_ = false;
    std::exception_ptr failure_;
};

}  // namespace aq::files
