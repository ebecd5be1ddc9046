#include "config.hpp"

#include "sql/legacy_owner.hpp"
#include "sql/pool.hpp"

#include <boost/json.hpp>

#include <filesystem>
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

std::string string_value(const boost::json::value& v, std::string_view key, bool may_be_empty = false) {
    if (!v.is_string() || (!may_be_empty && v.as_string().empty()))
        bad(key, may_be_empty ? "must be a string" : "must be a non-empty string");
    return std::string(v.as_string());
}

filesystem_settings parse_filesystem(const boost::json::value& v) {
    if (!v.is_object()) bad("filesystem", "must be an object");
    filesystem_settings f;
    for (const auto& [k, item] : v.as_object()) {
        const std::string key = "filesystem." + std::string(k);
        if (k == "path") {
            f.path = string_value(item, key);
            if (f.path.front() != '/') bad(key, "must be an absolute path");
        } else if (k == "fsync") {
            if (!item.is_bool()) bad(key, "must be true or false");
            f.fsync = item.as_bool();
        } else {
            bad(key, "unknown key");
        }
    }
    return f;
}

s3_settings parse_s3(const boost::json::value& v) {
    if (!v.is_object()) bad("s3", "must be an object");
    s3_settings s;
    constexpr std::uint64_t min_part = 5ull << 20;
    for (const auto& [k, item] : v.as_object()) {
        const std::string key = "s3." + std::string(k);
        if (k == "endpoint") s.endpoint = string_value(item, key);
        else if (k == "bucket") s.bucket = string_value(item, key);
        else if (k == "region") s.region = string_value(item, key);
        else if (k == "addressing") {
            std::string a = string_value(item, key);
            if (a != "path" && a != "virtual_host") bad(key, "must be \"path\" or \"virtual_host\"");
            s.path_style = a == "path";
        } else if (k == "access_key") s.access_key = string_value(item, key);
        else if (k == "secret_key") s.secret_key = string_value(item, key);
        else if (k == "session_token") s.session_token = string_value(item, key, true);
        else if (k == "ca_file") s.ca_file = string_value(item, key, true);
        else if (k == "prefix") s.prefix = string_value(item, key, true);
        else if (k == "part_bytes") s.part_bytes = unsigned_value(item, key, min_part, 5ull << 30);
        else if (k == "parts_in_flight") s.parts_in_flight = static_cast<std::uint32_t>(unsigned_value(item, key, 0, 16));
        else if (k == "max_attempts") s.max_attempts = static_cast<std::uint32_t>(unsigned_value(item, key, 1, 20));
        else if (k == "payload_signing") {
            const std::string v = string_value(item, key);
            if (v == "unless_tls") s.payload_signing = aq::s3::payload_signing::unless_tls;
            else if (v == "always") s.payload_signing = aq::s3::payload_signing::always;
            else if (v == "never") s.payload_signing = aq::s3::payload_signing::never;
            else bad(key, "must be \"unless_tls\", \"always\" or \"never\"");
        } else if (k == "large_objects") {
            const std::string v = string_value(item, key);
            if (v == "auto") s.large = s3_settings::large_contents::automatic;
            else if (v == "multipart") s.large = s3_settings::large_contents::multipart;
            else bad(key, "must be \"auto\" or \"multipart\"");
        } else bad(key, "unknown key");
    }
    for (auto [value, key] : {std::pair{&s.endpoint, "endpoint"}, std::pair{&s.bucket, "bucket"},
                              std::pair{&s.access_key, "access_key"}, std::pair{&s.secret_key, "secret_key"}})
        if (value->empty()) bad("s3." + std::string(key), "missing");
    return s;
}

}  // namespace

std::set<std::string, std::less<>> config::readable_stores() const {
    std::set<std::string, std::less<>> out{"database"};
    if (!filesystem.path.empty()) out.insert("filesystem");
    if (s3) out.insert("s3");
    return out;
}

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
        } else if (key == "store") {
            c.store = string_value(v, key);
            if (c.store != "filesystem" && c.store != "database" && c.store != "s3")
                bad(key, "must be \"filesystem\", \"database\" or \"s3\"");
        } else if (key == "filesystem") {
            c.filesystem = parse_filesystem(v);
        } else if (key == "s3") {
            c.s3 = parse_s3(v);
        } else if (key == "orphan_grace_seconds") {
            c.orphan_grace_seconds = static_cast<std::uint32_t>(unsigned_value(v, key, 1, 7 * 24 * 3600));
        } else if (key == "max_upload_bytes") {
            c.max_upload_bytes = unsigned_value(v, key, 1, i64 / 2);
        } else if (key == "upload_expiry_seconds") {
            c.upload_expiry_seconds = static_cast<std::int64_t>(unsigned_value(v, key, 1, 7 * 24 * 3600));
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
    if (c.pool_size < 2) bad("pool_size", "must be at least 2: content writes and short requests need one each");
    if (!c.upload_sessions) c.upload_sessions = c.pool_size / 2;
    else if (*c.upload_sessions >= c.pool_size)
        bad("upload_sessions", "must be below pool_size (" + std::to_string(c.pool_size) +
                                   "): the rest serve short requests");
    else if (*c.upload_sessions == 0)
        bad("upload_sessions", "must be at least 1: content written into the database store needs a session");
    // The embedded default: a sqlite: database keeps its files in a folder beside it.
    sql::target db;
    try {
        db = sql::parse_url(c.database);
    } catch (const std::invalid_argument& e) {
        bad("database", e.what());
    }
    if (c.filesystem.path.empty() && db.kind == sql::backend::sqlite)
        c.filesystem.path = (std::filesystem::path(db.file).parent_path() / "files").string();
    if (c.store.empty()) c.store = db.kind == sql::backend::sqlite ? "filesystem" : "database";
    if (c.store == "filesystem" && c.filesystem.path.empty())
        bad("filesystem.path", "missing: the filesystem store needs a folder (there is no default with PostgreSQL)");
    if (c.store == "s3" && !c.s3) bad("s3", "missing: the s3 store needs its settings");
    if (c.default_expiry_seconds > c.max_expiry_seconds)
        bad("default_expiry_seconds", "must not exceed max_expiry_seconds");
    return c;
}

}  // namespace aq::files
