// Process-wide log: one line per record on stderr, "2026-11-24T20:10:09.123Z INFO  [files] text".
// Thread-safe; a record is written with one write() so lines from threads never interleave.
#pragma once

#include "aqueduct/abi.h"

#include <string_view>

namespace aqd::log {

void set_level(aq_log_level level);
bool enabled(aq_log_level level);
// Parses "debug" | "info" | "warn" | "error"; false for anything else.
bool parse_level(std::string_view text, aq_log_level& level);

void write(aq_log_level level, std::string_view source, std::string_view message);

inline void debug(std::string_view src, std::string_view m) { write(AQ_LOG_DEBUG, src, m); }
inline void info(std::string_view src, std::string_view m) { write(AQ_LOG_INFO, src, m); }
inline void warn(std::string_view src, std::string_view m) { write(AQ_LOG_WARN, src, m); }
inline void error(std::string_view src, std::string_view m) { write(AQ_LOG_ERROR, src, m); }

}  // namespace aqd::log
