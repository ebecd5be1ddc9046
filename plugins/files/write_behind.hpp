// The part of an upload that runs beside its handler: hashing and storing the bytes.
//
// An upload's handler parses the multipart body and validates every line; hashing (SHA-256)
// and handing the bytes to the content store (a file write, a chunk insert in the database, an
// S3 part) need nothing from that work. So the bytes are gathered in blocks of `block_bytes`,
// and full blocks go to a thread of its own that passes each to the sink: the handler goes on
// with the next bytes meanwhile, and the network round trips of the database and S3 stores
// overlap the parsing instead of adding to it (issue 9's profile: SHA-256 alone was a quarter
// of an upload's CPU). A content of at most one block (most uploads) never starts a thread: its
// bytes reach the sink, inline, at finish().
//
// Memory: the block being filled plus at most `blocks_in_flight` waiting (3 MiB in all); push()
// waits when the thread is that far behind, so a slow store slows the upload instead of growing
// it. A failure of the sink (its exception, type and all) is thrown by the next push(), flush()
// or finish() on the caller's thread; the sink is not called again.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace aq::files {

class write_behind {
public:
    static constexpr std::size_t block_bytes = 1 << 20;
    static constexpr std::size_t blocks_in_flight = 2;

    using sink = std::function<void(std::string_view block)>;
    explicit write_behind(sink s) : sink_(std::move(s)) {}
    ~write_behind() { cancel(); }
    write_behind(const write_behind&) = delete;
    write_behind& operator=(const write_behind&) = delete;

    void push(std::string_view data);
    // Hands over the partial block too (a slow upload's bytes must not wait for a full block
    // longer than the caller wants), then waits until the sink has every byte pushed so far.
    void flush();
    // Everything pushed has reached the sink, in order; the thread is gone.
    void finish();
    // Drops what is queued and stops the thread (an abandoned upload). The sink is not called
    // again. Never throws.
    void cancel() noexcept;

private:
    void hand_over();  // queues `filling_` (starting the thread the first time)
    void wait_idle();
    void run();
    void rethrow_failure();

    sink sink_;
    std::string filling_;  // the block being filled, on the caller's thread
    std::thread thread_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::string> queued_;  // blocks the thread has not passed on yet
    std::deque<std::string> spare_;   // blocks passed on, kept to be filled again
    bool busy_ = false;               // the thread is in the sink
    bool closing_ = false;
    std::exception_ptr failure_;
};

}  // namespace aq::files
