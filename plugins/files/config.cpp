#include "config.hpp"

#include "sql/legacy_owner.hpp"

#include <boost/json.hpp>

#include <limits>
#include <stdexcept>

namespace aq::files {
namespace {

[[noreturn]] void bad(std::string_view key, std::string_view why) {
    throw std::invalid_argument("plugins.files." + std::string(key) + ": " + std::string(why));
}

std::uint64_t unsigned_value(const boost::json::value& v, std::string_view key, std::uint64_t min, std::uint64_t max) {
    std::uint64_t n = 0;
    if (v.is_uint64())
        n = v.as_uint64();
    else if (v.is_int64() && v.as_int64() >= 0)
        n = static_cast<std::uint64_t>(v.as_int64());
    else
        bad(key, "must be a non-negative integer");
    if (n < min || n > max) bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
}

}  // namespace

config config::parse(const boost::json::object& section) {
    config c;
    constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
    constexpr std::uint64_t i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    for (const auto& [k, v] : section) {
        std::string_view key = k;
        if (key == "enabled" || key == "requires") continue;  // the host's keys
        if (key == "database") {
            if (!v.is_string() || v.as_string().empty()) bad(key, "must be a database URL string");
            c.database = std::string(v.as_string());
        } else if (key == "max_file_bytes") {
            c.max_file_bytes = unsigned_value(v, key, 1, i64 / 2);
        } else if (key == "max_output_file_bytes") {
            c.max_output_file_bytes = unsigned_value(v, key, 1, i64 / 2);
        } else if (key == "max_line_bytes") {
            c.max_line_bytes = unsigned_value(v, key, 1024, 1ull << 30);
        } else if (key == "max_requests_per_file") {
            c.max_requests_per_file = unsigned_value(v, key, 1, 1ull << 32);
        } else if (key == "purposes") {
            if (!v.is_array()) bad(key, "must be an array of strings");
            c.purposes.clear();
            for (const auto& p : v.as_array()) {
                if (!p.is_string() || p.as_string().empty()) bad(key, "must be an array of non-empty strings");
                if (p.as_string() == "batch_output") bad(key, "\"batch_output\" cannot be uploaded");
                c.purposes.emplace(p.as_string());
            }
            if (c.purposes.empty()) bad(key, "must name at least one purpose");
        } else if (key == "default_expiry_seconds") {
            c.default_expiry_seconds = static_cast<std::int64_t>(unsigned_value(v, key, 1, i64 / 4));
        } else if (key == "max_expiry_seconds") {
            c.max_expiry_seconds = static_cast<std::int64_t>(unsigned_value(v, key, 1, i64 / 4));
        } else if (key == "quota_bytes") {
            c.quota_bytes = unsigned_value(v, key, 0, i64);
        } else if (key == "quota_files") {
            c.quota_files = unsigned_value(v, key, 0, i64);
        } else if (key == "expiry_interval_seconds") {
            c.expiry_interval_seconds = static_cast<std::uint32_t>(unsigned_value(v, key, 1, u32 / 1000));
        } else if (key == "expiry_batch_size") {
            c.expiry_batch_size = static_cast<std::uint32_t>(unsigned_value(v, key, 1, 100000));
        } else if (key == "pool_size") {
            c.pool_size = static_cast<std::uint32_t>(unsigned_value(v, key, 1, 1024));
        } else if (key == "upload_sessions") {
            c.upload_sessions = static_cast<std::uint32_t>(unsigned_value(v, key, 0, 1023));
        } else if (key == "session_wait_ms") {
            c.session_wait_ms = static_cast<std::uint32_t>(unsigned_value(v, key, 1, 600000));
        } else if (key == "legacy_team_owners") {
            try {
                c.legacy_team_owners = sql::legacy_team_owners_from(v);
            } catch (const std::invalid_argument& e) {
                bad(key, e.what());
            }
        } else {
            bad(key, "unknown key");
        }
    }
    if (c.database.empty()) bad("database", "missing (the host gives its own database URL by default)");
    if (!c.upload_sessions) c.upload_sessions = c.pool_size / 2;
    else if (*c.upload_sessions >= c.pool_size)
        bad("upload_sessions", "must be below pool_size (" + std::to_string(c.pool_size) +
                                   "): the rest serve short requests");
    if (c.default_expiry_seconds > c.max_expiry_seconds)
        bad("default_expiry_seconds", "must not exceed max_expiry_seconds");
    return c;
}

}  // namespace aq::files
