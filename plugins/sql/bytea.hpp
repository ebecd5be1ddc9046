// PostgreSQL bytea at full speed, on SOCI's own connection.
//
// SOCI 4.0.3 binds std::string as text, so arbitrary bytes cannot go into a bytea column through
// it, and hex-encoded text reaches only ~175 MiB/s. These two calls use libpq directly with
// binary parameters and binary results on the PGconn of a SOCI postgresql session (~300 MiB/s
// write, ~1100 MiB/s read, see TOOLCHAIN.md). They run inside whatever transaction the session
// has open, so they mix freely with ordinary SOCI statements.
//
// Parameters are $1, $2... in the SQL. A text parameter is sent as text and PostgreSQL casts it
// (write "$2::bigint" for numbers); a binary parameter is sent as raw bytes and must be bytea.
// Errors throw std::runtime_error with libpq's message (never the parameter values).
#pragma once

#include <soci/session.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace aq::sql::bytea {

struct param {
    std::string_view value;
    bool binary = false;
};

inline param text(std::string_view v) { return {v, false}; }
inline param binary(std::string_view v) { return {v, true}; }

// Runs a statement that returns no rows (insert, update, delete). Returns the affected row count.
long long execute(soci::session& session, const char* sql, std::initializer_list<param> params);

// Runs a query and returns the first column of the first row as raw bytes (a bytea column is
// returned exactly as stored), nullopt when there is no row or the value is NULL.
std::optional<std::string> fetch(soci::session& session, const char* sql, std::initializer_list<param> params);

}  // namespace aq::sql::bytea
