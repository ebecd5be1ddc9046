// The part of an upload that runs beside its handler: hashing and storing the bytes.
//
// An upload's handler parses the multipart body and validates every line; hashing (SHA-256)
// and handing the bytes to the content store (a file write, a chunk insert in the database, an
// S3 part) need nothing from that work. So the bytes are gathered in blocks of `block_bytes`,
// and full blocks go through stages, each on a thread of its own (the store's writer has two:
// the hash, then the store): the handler goes on with the next bytes meanwhile, and the
// network round trips of the database and S3 stores overlap the parsing and the hashing
// instead of adding to them (issue 9's profile: SHA-256 alone was a quarter of an upload's
// CPU; with hash and store on one thread, a database upload waited for PostgreSQL and hashed
// by turns). Each stage sees every block, in order, after the stage before it. A content of at
// most one block (most uploads) never starts a thread: its bytes go through the stages, inline,
// at finish().
//
// Memory: the block being filled plus at most `blocks_in_flight` in the stages (4 MiB in all);
// push() waits when they are that far behind, so a slow store slows the upload instead of
// growing it. A failure of a stage (its exception, type and all) is thrown by the next push(),
// flush() or finish() on the caller's thread; no stage is called again.
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
#include <vector>

namespace aq::files {

class write_behind {
public:
    static constexpr std::size_t block_bytes = 1 << 20;
    static constexpr std::size_t blocks_in_flight = 3;

    using sink = std::function<void(std::string_view block)>;
    explicit write_behind(std::vector<sink> stages);
    explicit write_behind(sink s) : write_behind(std::vector<sink>{std::move(s)}) {}
    ~write_behind() { cancel(); }
    write_behind(const write_behind&) = delete;
    write_behind& operator=(const write_behind&) = delete;

    void push(std::string_view data);
    // Hands over the partial block now, without waiting for the stages: a slow upload's bytes
    // go on to the store although no block fills (the caller decides how often; each call
    // costs a block of whatever size).
    void pass_on();
    // Hands over the partial block too (a slow upload's bytes must not wait for a full block
    // longer than the caller wants), then waits until every stage has every byte pushed so far.
    void flush();
    // Everything pushed has been through every stage, in order; the threads are gone.
    void finish();
    // Drops what is queued and stops the threads (an abandoned upload): a stage in the middle
    // of a block ends it, and no stage is called again. Never throws.
    void cancel() noexcept;

private:
    struct stage {
        sink run;
        std::deque<std::string> queued;  // blocks waiting for this stage
        enum class activity { waiting, running, ended } now = activity::waiting;  // its thread's
        std::thread thread;
    };

    void hand_over();  // queues `filling_` (starting the threads the first time)
    void wait_idle();
    void run(std::size_t index);
    void rethrow_failure();
    void join_all() noexcept;
    std::size_t in_flight() const;  // under mutex_

    std::vector<stage> stages_;
    std::string filling_;  // the block being filled, on the caller's thread
    bool started_ = false;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::string> spare_;   // blocks through every stage, kept to be filled again
    enum class ending { no, finishing, cancelled };
    ending ending_ = ending::no;
    std::exception_ptr failure_;
};

}  // namespace aq::files
