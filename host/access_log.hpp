// The access log: one JSON line per request, for operators and log pipelines (README, "Operating
// aqueduct"):
//
//   {"time":"2026-11-24T20:10:09.123Z","request_id":"req_...","client":"10.0.0.7","method":"POST",
//    "route":"/files","path":"/v1/files","status":200,"bytes_in":1234,"bytes_out":567,
//    "duration_ms":12.345,"token":"ops"}
//
// `time` is when the request ended, `route` the matched route's pattern (null when none),
// `token` the name of the token that authenticated it (null when none): never the token itself.
//
// The target is "off", "stdout", "stderr" or a file, appended to. The log writes through one
// descriptor of its own for its whole life, and reopen() (SIGHUP or SIGUSR1, after logrotate
// moved the file) or retarget() (a reload that names another file) replace the file behind that
// descriptor with dup2(), which is atomic: a line being written lands in the old file or the
// new one, never in a closed or reused descriptor, and writers take no lock. Each line is one
// write(2) on an O_APPEND descriptor, so lines never interleave.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace aqd {

// One finished request, as the connection saw it. The views live until write() returns.
struct request_record {
    std::string_view request_id;
    std::string_view client;   // the peer's address
    std::string_view method;
    std::string_view route;    // the pattern; empty: none matched
    std::string_view path;
    std::string_view token;    // the token's name; empty: none
    int status = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::chrono::steady_clock::duration duration{};
};

class access_log {
public:
    // Throws std::system_error when a file target cannot be opened.
    explicit access_log(const std::string& target);
    ~access_log();
    access_log(const access_log&) = delete;
    access_log& operator=(const access_log&) = delete;

    bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }

    // Writes the record's line. Thread: any; never throws.
    void write(const request_record& r) noexcept;

    // Opens the file again under its name, keeping the old one when that fails (logged). A
    // stdout, stderr or off target has nothing to reopen. Thread: any.
    void reopen() noexcept;
    // Switches to another target. Throws std::system_error (and changes nothing) when a file
    // cannot be opened. Thread: any.
    void retarget(const std::string& target);

    // The JSON line of a record, without the newline (tests and write()).
    static std::string line(const request_record& r, std::chrono::system_clock::time_point now);

private:
    // A descriptor for `target`: a file opened for appending, or a duplicate of stdout or stderr.
    static int open_target(const std::string& target);

    std::mutex mutex_;  // reopen and retarget against each other; writers never take it
    std::string target_;
    int fd_ = -1;       // never changes; dup2 replaces what it refers to
    std::atomic<bool> enabled_{false};
};

}  // namespace aqd
