// Gateway configs with the testplug fixture enabled (tests/fixtures/testplug.cpp).
#pragma once

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/process_stats.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include <sys/stat.h>

namespace aqt {

// {"plugins": {"testplug": {"enabled": true}}} plus the given top-level keys.
inline boost::json::object with_testplug(boost::json::object extra = {}) {
    boost::json::object cfg = std::move(extra);
    cfg["plugins"] = boost::json::object{{"testplug", boost::json::object{{"enabled", true}}}};
    return cfg;
}

// How often POST /count's handler has begun (GET /counters), asked with alice's token.
inline std::uint64_t count_handler_starts(const gateway& gw) {
    http::client c(gw.port());
    return c.get("/counters", {{"Authorization", gw.bearer("alice")}}).json().at("count_started").to_number<std::uint64_t>();
}

// The head of a POST /count with alice's token and this Content-Length.
inline std::string count_upload_head(const gateway& gw, std::size_t length) {
    return "POST /count HTTP/1.1\r\nHost: t\r\nAuthorization: " + gw.bearer("alice") +
           "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

// Spool files the gateway holds open: unnamed files in its directory ("DIR/#123 (deleted)").
inline std::size_t spool_files(const gateway& gw) {
    std::size_t n = 0;
    for (auto& target : open_files(gw.pid()))
        if (target.rfind((gw.dir() / "#").string(), 0) == 0) ++n;
    return n;
}

// The bytes in the gateway's spool files now (their sizes, through /proc/PID/fd).
inline std::uint64_t spool_bytes(const gateway& gw) {
    std::uint64_t n = 0;
    const std::string fds = "/proc/" + std::to_string(gw.pid()) + "/fd";
    for (const auto& e : std::filesystem::directory_iterator(fds)) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(e.path(), ec);
        if (ec || target.string().rfind((gw.dir() / "#").string(), 0) != 0) continue;
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0) n += static_cast<std::uint64_t>(st.st_size);
    }
    return n;
}

// The bytes GET /stream?bytes=N sends: byte i is 'a' + i % 26.
inline std::string stream_pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
}

}  // namespace aqt
