#include "access_log.hpp"

#include "log.hpp"
#include "utf8.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace aqd {

namespace {

// A JSON string. Text that is not UTF-8 (a path with raw bytes) has its bytes over 0x7f written
// as \u00XX, so the line stays valid JSON.
void append_json_string(std::string& out, std::string_view s) {
    const bool utf8 = valid_utf8(s);
    out += '"';
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f || (u >= 0x80 && !utf8)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
}

void append_optional(std::string& out, std::string_view s) {
    if (s.empty())
        out += "null";
    else
        append_json_string(out, s);
}

template <class T>
void append_integer(std::string& out, T v) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

}  // namespace

int access_log::open_target(const std::string& target) {
    int fd;
    if (target == "off")
        fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    else if (target == "stdout")
        fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    else if (target == "stderr")
        fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    else
        fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "access_log " + target);
    return fd;
}

access_log::access_log(const std::string& target)
    : target_(target), fd_(open_target(target)), enabled_(target != "off") {}

access_log::~access_log() {
    if (fd_ >= 0) ::close(fd_);
}

std::string access_log::line(const request_record& r, std::chrono::system_clock::time_point now) {
    std::string out;
    out.reserve(256 + r.path.size());
    out += "{\"time\":\"";
    log::append_timestamp(out, now);
    out += "\",\"request_id\":";
    append_json_string(out, r.request_id);
    out += ",\"client\":";
    append_json_string(out, r.client);
    out += ",\"method\":";
    append_json_string(out, r.method);
    out += ",\"route\":";
    append_optional(out, r.route);
    out += ",\"path\":";
    append_json_string(out, r.path);
    out += ",\"status\":";
    append_integer(out, r.status);
    out += ",\"bytes_in\":";
    append_integer(out, r.bytes_in);
    out += ",\"bytes_out\":";
    append_integer(out, r.bytes_out);
    // Milliseconds with microsecond resolution.
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count();
    char ms[32];
    const int n = std::snprintf(ms, sizeof ms, "%lld.%03lld", static_cast<long long>(us / 1000),
                                static_cast<long long>(us % 1000));
    out += ",\"duration_ms\":";
    out.append(ms, static_cast<std::size_t>(n));
    out += ",\"token\":";
    append_optional(out, r.token);
    out += '}';
    return out;
}

void access_log::write(const request_record& r) noexcept {
    if (!enabled()) return;
    try {
        std::string text = line(r, std::chrono::system_clock::now());
        text += '\n';
        const char* p = text.data();
        std::size_t left = text.size();
        while (left > 0) {
            const ssize_t n = ::write(fd_, p, left);
            if (n < 0) {
                if (errno == EINTR) continue;
                return;  // a full disk loses access lines, never requests
            }
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    } catch (...) {
    }
}

void access_log::reopen() noexcept {
    try {
        std::lock_guard lock(mutex_);
        if (target_ == "off" || target_ == "stdout" || target_ == "stderr") return;
        const int fresh = open_target(target_);
        ::dup2(fresh, fd_);
        ::close(fresh);
        log::info("host", "access log reopened: " + target_);
    } catch (const std::exception& e) {
        log::error("host", std::string("access log not reopened (lines go to the old file): ") + e.what());
    }
}

void access_log::retarget(const std::string& target) {
    std::lock_guard lock(mutex_);
    if (target == target_) return;
    const int fresh = open_target(target);  // throws before anything changes
    enabled_.store(target != "off", std::memory_order_relaxed);
    ::dup2(fresh, fd_);
    ::close(fresh);
    target_ = target;
}

}  // namespace aqd
