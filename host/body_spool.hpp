// A request body held by the host until the handler reads it.
//
// The connection reads a request's whole body before the handler runs (as nginx does in front of
// its upstreams): a client that sends slowly, or vanishes halfway, never holds a worker thread.
// The first `memory_bytes` stay in memory, which covers the small JSON bodies of most routes;
// the rest goes to an unnamed temporary file in the spool directory (O_TMPFILE, or mkstemp and
// unlink where the filesystem refuses O_TMPFILE), so it disappears on close and after a crash.
//
// Disk is bounded by spool_budget: the bytes of every body spooled or waiting to be handled, at
// most max_spool_bytes. A Content-Length body reserves its length before a byte is read; a
// chunked body reserves as it grows.
//
// A body is received (append) until it is complete (finish) or abandoned (abandon: the client
// went away, was too slow, or the host gave up on it). Usually the handler starts only once it
// is complete. A large body that arrives fast may be handed to its handler while it is still
// arriving (the connection decides: "streaming" in connection.hpp); read() then waits for the
// bytes it has not got yet, and reports an abandoned body as -ECONNABORTED.
//
// A streaming body goes on through memory, not the file (stream_through_memory): the bytes that
// arrive while its handler reads are queued in a window of at most window_bytes, and the
// connection stops reading the socket while the window is full (hold), until the reader has
// taken half of it. So the handler's pace paces the client through TCP, and the bytes are copied
// once into memory and once out, instead of written to the file and read back (a quarter of
// the gateway's CPU per byte of a large upload went to the spool file's write and read).
//
// Threads: append(), finish(), abandon(), hold() and stream_through_memory() on the connection's
// I/O thread; read() on the handler thread, at the same time while the body streams. The first
// memory_bytes are complete before a handler can start (the connection streams only past them),
// so the memory part is never written while it is read; the file is only appended to (and not at
// all once streaming through memory), and a reader reads only what the size it saw under the
// mutex covers. The window's blocks are pushed by the writer and popped by the reader under the
// mutex; a block's bytes are copied out without it (a deque's elements stay where they are).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aqd {

class spool_budget {
public:
    explicit spool_budget(std::uint64_t max_bytes) : max_(max_bytes) {}
    // False when `n` more bytes would exceed the budget. Thread: any.
    bool reserve(std::uint64_t n) noexcept;
    void release(std::uint64_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }
    std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

private:
    const std::uint64_t max_;  // 0: no limit
    std::atomic<std::uint64_t> used_{0};
};

class body_spool {
public:
    body_spool(std::filesystem::path dir, std::size_t memory_bytes, spool_budget& budget);
    ~body_spool();  // closes (and so deletes) the file, returns the reservation
    body_spool(const body_spool&) = delete;
    body_spool& operator=(const body_spool&) = delete;

    // Reserves room for `n` more bytes than are stored now (a declared Content-Length). False
    // when the budget is exhausted.
    bool reserve_total(std::uint64_t n);

    // Stores body bytes. False when the budget is exhausted (the request cannot be taken);
    // throws std::system_error when the file cannot be created or written (disk full).
    bool append(std::string_view bytes);

    // The body is complete: a reader that reached the end gets 0.
    void finish();
    // The body will never be complete: a reader waiting, or reaching the end of what arrived,
    // gets -ECONNABORTED.
    void abandon();

    // The room each block of the window gets: the connection's reads are at most this long.
    static constexpr std::size_t window_block_bytes = 64 * 1024;

    // From now on, bytes past those stored go to a window in memory (see above). `on_room` is
    // called on the reader's thread, outside any lock, when a held writer may go on.
    void stream_through_memory(std::size_t window_bytes, std::function<void()> on_room);
    // Streaming through memory: true when the window is full, and marks the writer held (it
    // stops appending until on_room). False otherwise.
    bool hold();

    // Thread: the connection's (the writer's view).
    std::uint64_t size() const noexcept { return written_; }
    bool on_disk() const noexcept { return fd_ >= 0; }
    // Whether a reader could start now: every byte of the memory part has arrived.
    bool memory_part_complete() const noexcept { return written_ >= memory_bytes_; }

    // The next bytes from the start of the body: > 0 bytes, 0 at the end, or -errno. Waits while
    // the body is still arriving.
    std::int64_t read(void* buf, std::size_t cap);

    // Creates (and at once drops) a spool file in `dir`: a refusal at startup is clearer than
    // one on the first large upload. Throws std::system_error naming the directory.
    static void check_dir(const std::filesystem::path& dir);

private:
    void open_file();
    void write_file(std::string_view bytes);
    void append_window(std::string_view bytes);
    std::int64_t read_window(void* buf, std::size_t cap);

    std::filesystem::path dir_;
    std::size_t memory_bytes_;
    spool_budget& budget_;
    std::uint64_t reserved_ = 0;

    enum class state { receiving, complete, abandoned };

    std::string memory_;
    int fd_ = -1;
    std::uint64_t written_ = 0;   // bytes stored (memory + file); the writer's own count
    std::uint64_t read_pos_ = 0;  // bytes returned by read()

    // What a reader may see: published by the writer after the bytes are stored.
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::uint64_t size_ = 0;
    state state_ = state::receiving;

    // Streaming through memory. file_end_ is where the file's bytes end in the body (set once,
    // before the reader starts; the maximum while the file takes everything).
    std::uint64_t file_end_ = UINT64_MAX;
    std::size_t window_max_ = 0;
    std::function<void()> on_room_;
    std::deque<std::string> window_;    // guarded by mutex_; the reader pops, the writer pushes
    std::size_t window_front_used_ = 0;  // bytes of window_.front() already read; guarded
    std::size_t window_bytes_ = 0;       // unread bytes in window_; guarded
    bool held_ = false;                  // the writer waits for room; guarded
    std::vector<std::string> spare_;     // read blocks kept for the writer to refill; guarded
};

}  // namespace aqd
