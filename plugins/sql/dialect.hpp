// What differs between SQLite and PostgreSQL, in one place, so the plugins' SQL carries no
// backend branches.
//
//   claims      several hosts on one PostgreSQL pick work rows without taking the same row:
//               "WITH picked AS (SELECT key ... LIMIT :n" + d.skip_locked() + ") UPDATE t SET
//               ... FROM picked WHERE t.key = picked.key" (batches' line_queue), or a SELECT
//               ending with skip_locked() and then UPDATEs by key in the same transaction
//               (files' purge). The pick must run once: as `key IN (SELECT ... LIMIT :n)`
//               PostgreSQL may re-run the subquery per row and claim more than asked. On SQLite
//               skip_locked() is empty: BEGIN IMMEDIATE (sql::write_transaction) already admits
//               one writer at a time.
//   locks       lock(session, space, key): a read that decides a write (a quota check before
//               a commit) is serialized per key for the rest of the transaction; PostgreSQL
//               pg_advisory_xact_lock, SQLite nothing (the write lock already serializes).
//   raw bytes   execute()/fetch() run a statement whose parameters are $1, $2... and may be raw
//               bytes (blob), at the backend's full speed: SOCI 4.0.3 binds std::string as text,
//               which PostgreSQL cannot put into bytea and SQLite stores as TEXT. PostgreSQL
//               goes through libpq binary parameters and results on SOCI's own connection
//               (~300 MiB/s write, ~1100 MiB/s read, TOOLCHAIN.md; hex text through SOCI is
//               about half that), SQLite through its C API (sqlite3_bind_blob). Both run inside
//               whatever transaction the session has open, so they mix with SOCI statements.
//   types       blob_type(): the column type of raw bytes ("blob" / "bytea").
//
// What is the same on both and needs nothing here: upserts (INSERT ... ON CONFLICT (k) DO
// UPDATE SET c = excluded.c, SQLite >= 3.24), CTEs, row values, "limit :n".
//
// Errors throw std::runtime_error with the backend's message, never a parameter's value.
#pragma once

#include "sql/pool.hpp"

#include <soci/session.h>
#include <soci/statement.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace aq::sql {

// A parameter of dialect::execute / fetch. Text and integers are bound as values of that type;
// a blob as raw bytes.
struct param {
    enum class type { text, integer, blob };
    type kind = type::text;
    std::string_view bytes;  // text and blob
    long long number = 0;    // integer

    static param text(std::string_view v) { return {type::text, v, 0}; }
    static param integer(long long v) { return {type::integer, {}, v}; }
    static param blob(std::string_view v) { return {type::blob, v, 0}; }
};

class dialect {
public:
    explicit dialect(backend kind) noexcept : kind_(kind) {}
    backend kind() const noexcept { return kind_; }

    // " FOR UPDATE SKIP LOCKED" on PostgreSQL, "" on SQLite: ends the SELECT of a claim (above).
    std::string_view skip_locked() const noexcept;

    // Inside a write transaction: holds a lock on (space, key) until it ends, so two
    // transactions that read and then write for the same key take turns.
    void lock(soci::session& session, std::int32_t space, const std::string& key) const;

    // Runs a statement that returns no rows; returns the affected row count.
    long long execute(soci::session& session, std::string_view sql, std::initializer_list<param> params) const;
    // Runs a query; the first column of the first row as raw bytes, nullopt for no row or NULL.
    std::optional<std::string> fetch(soci::session& session, std::string_view sql,
                                     std::initializer_list<param> params) const;

    std::string_view blob_type() const noexcept { return kind_ == backend::postgresql ? "bytea" : "blob"; }

    // Ends a pass of a statement kept across leases (session_lease::kept) once its rows are
    // read. SQLite: sqlite3_reset, because a statement left stepped keeps its read transaction
    // open, and the session would go on seeing the database as it was then (and hold back WAL
    // checkpoints). PostgreSQL: nothing (a result arrives whole; no transaction stays open).
    void end_pass(soci::statement& st) const noexcept;

private:
    backend kind_;
};

}  // namespace aq::sql
