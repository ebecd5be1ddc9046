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
// Threads: append(), finish() and abandon() on the connection's I/O thread; read() on the
// handler thread, at the same time while the body streams. The first memory_bytes are complete
// before a handler can start (the connection streams only past them), so the memory part is
// never written while it is read; the file is only appended to, and a reader reads only what
// the size it saw under the mutex covers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

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
};

}  // namespace aqd
