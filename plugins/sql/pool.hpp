// A pool of SOCI sessions opened from one database URL.
//
// URLs:
//   sqlite:/abs/path/db.sqlite         SQLite file (created if missing), WAL journal, busy
//                                      timeout 10 s, foreign keys on, synchronous=NORMAL
//   postgresql://user:pass@host:port/db (also postgres://) PostgreSQL; user, password, port
//                                      optional, percent-encoded parts are decoded; a query
//                                      string (?sslmode=require&...) is passed on as key=value
//
// A session is borrowed with `pool::lease()`, which blocks until one is free; the returned
// soci::session goes back to the pool when it is destroyed. Sessions are opened eagerly at
// construction so a bad URL or an unreachable server fails init, not the first request.
#pragma once

#include <soci/connection-pool.h>
#include <soci/session.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace aq::sql {

enum class backend { sqlite, postgresql };

// What a URL names: the backend and SOCI's connect string for it.
struct target {
    backend kind;
    std::string connect_string;
    std::string file;  // SQLite: the database file; empty for PostgreSQL
};

// Parses a database URL. Throws std::invalid_argument naming what is wrong (never echoing a
// password).
target parse_url(std::string_view url);

class pool {
public:
    // Opens `size` sessions (at least 1). Throws on an invalid URL or a failed connection.
    pool(std::string_view url, std::size_t size);
    ~pool();
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    backend kind() const noexcept { return kind_; }
    // The SQLite database file; empty for PostgreSQL.
    const std::string& file() const noexcept { return file_; }
    std::size_t size() const noexcept { return size_; }

    // A session borrowed from the pool until the returned object is destroyed.
    std::unique_ptr<soci::session> lease();

private:
    backend kind_;
    std::string file_;
    std::size_t size_;
    std::unique_ptr<soci::connection_pool> pool_;
};

}  // namespace aq::sql
