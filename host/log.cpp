#include "log.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include <unistd.h>

namespace aqd::log {

namespace {

std::atomic<int> current_level{AQ_LOG_INFO};

// The id of the request this thread works for (request_scope); empty when none.
std::string& thread_request() {
    thread_local std::string id;
    return id;
}

const char* level_name(aq_log_level level) {
    switch (level) {
    case AQ_LOG_DEBUG: return "DEBUG";
    case AQ_LOG_INFO: return "INFO ";
    case AQ_LOG_WARN: return "WARN ";
    case AQ_LOG_ERROR: return "ERROR";
    }
    return "?????";
}

}  // namespace

void append_timestamp(std::string& out, std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    const std::time_t seconds = system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                                utc.tm_min, utc.tm_sec, static_cast<int>(millis));
    out.append(buf, static_cast<std::size_t>(n));
}

namespace {

// A record is exactly one line: text that comes from clients or plugins could otherwise forge
// extra log lines, so line breaks and other control characters are escaped.
void append_escaped(std::string& out, std::string_view text) {
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (u < 0x20 && c != '\t') {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out += c;
        }
    }
}

}  // namespace

request_scope::request_scope(std::string_view request_id) {
    std::string& current = thread_request();
    if (!current.empty()) saved_ = current;
    current.assign(request_id);  // keeps the thread's buffer: no allocation after the first
}

request_scope::~request_scope() {
    std::string& current = thread_request();
    if (saved_.empty())
        current.clear();
    else
        current.swap(saved_);
}

void request_scope::switch_to(std::string_view request_id) { thread_request().assign(request_id); }

void set_level(aq_log_level level) { current_level.store(level, std::memory_order_relaxed); }

bool enabled(aq_log_level level) { return level >= current_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, aq_log_level& level) {
    if (text == "debug") level = AQ_LOG_DEBUG;
    else if (text == "info") level = AQ_LOG_INFO;
    else if (text == "warn") level = AQ_LOG_WARN;
    else if (text == "error") level = AQ_LOG_ERROR;
    else return false;
    return true;
}

void write(aq_log_level level, std::string_view source, std::string_view message) {
    if (!enabled(level)) return;
    std::string line;
    line.reserve(40 + source.size() + message.size());
    append_timestamp(line, std::chrono::system_clock::now());
    line += ' ';
    line += level_name(level);
    line += " [";
    append_escaped(line, source);
    line += "] ";
    if (const std::string& request = thread_request(); !request.empty()) {
        line += '[';
        append_escaped(line, request);
        line += "] ";
    }
    append_escaped(line, message);
    line += '\n';

    // One write(2) per record keeps lines from different threads whole (stderr is unbuffered at
    // the descriptor level; a short write is only possible for very long lines or signals).
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // nowhere left to report a failing stderr
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace aqd::log
