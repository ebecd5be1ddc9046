// Process-wide log: one line per record on stderr, "2026-11-24T20:10:09.123Z INFO  [files] text",
// or, while the writing thread works for a request, "... INFO  [files] [req_3kTMd9...] text".
// Thread-safe; a record is written with one write() so lines from threads never interleave.
#pragma once

#include "aqueduct/abi.h"

#include <chrono>
#include <string>
#include <string_view>

namespace aqd::log {

void set_level(aq_log_level level);
bool enabled(aq_log_level level);
// Parses "debug" | "info" | "warn" | "error"; false for anything else.
bool parse_level(std::string_view text, aq_log_level& level);

void write(aq_log_level level, std::string_view source, std::string_view message);

// "2026-11-24T20:10:09.123Z": the time format of every log line (and of the access log).
void append_timestamp(std::string& out, std::chrono::system_clock::time_point when);

// The request the calling thread works for, put on every line it writes until the scope ends:
// the host sets one around a handler call, a pulled body source's reads and the connection's own
// work on a request, so plugin lines written from those threads carry the id too. Scopes nest
// (the outer id comes back when an inner scope ends).
class request_scope {
public:
    explicit request_scope(std::string_view request_id);
    ~request_scope();
    request_scope(const request_scope&) = delete;
    request_scope& operator=(const request_scope&) = delete;

    // Replaces the id of the scope in force on this thread (a connection that began its next
    // request, or took the client's own id) until that scope ends.
    static void switch_to(std::string_view request_id);

private:
    std::string saved_;  // the outer scope's id; empty when there was none (no allocation then)
};

inline void debug(std::string_view src, std::string_view m) { write(AQ_LOG_DEBUG, src, m); }
inline void info(std::string_view src, std::string_view m) { write(AQ_LOG_INFO, src, m); }
inline void warn(std::string_view src, std::string_view m) { write(AQ_LOG_WARN, src, m); }
inline void error(std::string_view src, std::string_view m) { write(AQ_LOG_ERROR, src, m); }

}  // namespace aqd::log
