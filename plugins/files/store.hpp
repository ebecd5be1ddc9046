// Files and their content in SQL (SQLite or PostgreSQL) through SOCI.
//
// Schema (migration 1):
//   files(id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes)
//   file_chunks(file_id -> files.id on delete cascade, seq, data)   content in ~1 MiB chunks
// Migration 2 rewrites owner from a bare name to an owner key ("user:NAME", "team:NAME").
//
// A new file is written by a writer, in one transaction: the metadata row and every chunk become
// visible together, and an exception, an abort or a crash leaves nothing. A direct writer holds
// that transaction from its first byte (PostgreSQL uploads: no extra copy, MVCC lets others
// write meanwhile) on a streaming lease of the pool, of which only `upload_sessions` exist, so
// slow uploads never take the sessions short requests need; a spooled writer stages the content
// in a spool and opens the transaction only at commit (SQLite uploads, whose single write lock
// must not wait for a client's network; PostgreSQL uploads when no streaming lease is free; and
// service writers, which may take hours). Every read filters by owner and by expires_at > now, so
// another owner's file and an expired one are both simply "not found", whether or not the purge
// has run.
//
// A database that cannot be reached, or a pool without a free session, surfaces as
// sql::unavailable from any method (nothing half-written stays).
//
// Content bytes: SQLite binds std::string into cast(:d as blob); PostgreSQL uses bytea through
// libpq binary parameters (aq::sql::bytea), the fast path measured in TOOLCHAIN.md.
//
// Every method may be called from any thread; each borrows a session from the pool for its
// duration. A writer holds one (and its transaction) until committed or destroyed; a reader
// borrows one per chunk, so a slow consumer never pins a session.
#pragma once

#include "file_record.hpp"
#include "sha256.hpp"
#include "spool.hpp"
#include "sql/legacy_owner.hpp"
#include "sql/pool.hpp"

#include <soci/session.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace aq::sql {
class write_transaction;
}

namespace aq::files {

// Unix seconds now.
std::int64_t unix_now();

class store {
public:
    static constexpr std::size_t chunk_bytes = 1 << 20;

    // Thrown by commit when the owner's quota would be exceeded.
    struct quota_exceeded : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    // Thrown by a reader when the file disappeared (deleted, purged) while being read.
    struct gone : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    struct quota {
        std::uint64_t bytes = 0;  // 0 = unlimited
        std::uint64_t files = 0;
    };

    // Streams a new file into the database inside one transaction.
    class writer {
    public:
        ~writer();  // rolls back unless committed
        writer(const writer&) = delete;
        writer& operator=(const writer&) = delete;

        // Appends content; full chunks are inserted as they fill.
        void write(std::string_view data);
        std::uint64_t bytes() const noexcept { return bytes_; }
        const std::string& id() const noexcept { return id_; }

        // Inserts the last chunk and the metadata, checks the owner's quota (counting this file)
        // and commits. created_at is now; expires_at = created_at + lifetime_seconds.
        file_record commit(std::string_view filename, std::string_view purpose, std::int64_t lifetime_seconds,
                           const quota& limit);

    private:
        friend class store;
        // Direct when `direct` holds a session, else spooled.
        writer(store& s, std::string owner, sql::session_lease direct);
        void begin();
        void flush();
        file_record finish(std::string_view filename, std::string_view purpose, std::int64_t lifetime_seconds,
                           const quota& limit);

        store& store_;
        std::unique_ptr<spool> spool_;  // spooled writers only
        sql::session_lease session_;
        std::unique_ptr<sql::write_transaction> tx_;
        std::string id_, owner_;
        std::string buffer_;
        std::int64_t seq_ = 0;
        std::uint64_t bytes_ = 0;
        sha256 hash_;
        bool committed_ = false;
    };

    // Reads a file's content chunk by chunk, from any offset. Each chunk is read on its own (no
    // snapshot): a file deleted meanwhile ends with store::gone.
    class reader {
    public:
        const file_record& info() const noexcept { return record_; }
        // Positions the next read at `offset` (<= bytes).
        void seek(std::uint64_t offset);
        // The next piece of content; empty at the end. Throws store::gone if the file vanished.
        std::string next();

    private:
        friend class store;
        reader(store& s, file_record record);

        store& store_;
        file_record record_;
        std::int64_t seq_ = 0;
        std::size_t skip_ = 0;  // bytes to drop from the next chunk (after a seek)
        std::uint64_t left_ = 0;
    };

    struct list_query {
        std::optional<std::string> purpose;
        std::size_t limit = 10000;
        bool ascending = false;
        std::optional<std::string> after;  // id of the last item of the previous page
    };
    struct list_page {
        std::vector<file_record> files;
        bool has_more = false;
    };
    struct unknown_after : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    // Spooled writers stage content in `staging_folder`. Migrates the schema; rows of a database
    // from before owner keys get them by sql::legacy_owner_key with `legacy_teams`.
    store(sql::pool& pool, std::filesystem::path staging_folder, const sql::name_set& legacy_teams = {});

    // What the migration to owner keys rewrote when this store opened the database (zero when
    // the database was already migrated).
    const sql::owner_rewrite& migrated_owners() const noexcept { return migrated_owners_; }

    sql::backend kind() const noexcept { return pool_.kind(); }
    // Where spooled writers stage content (also fit for other scratch files of an upload).
    const std::filesystem::path& staging_folder() const noexcept { return staging_folder_; }

    // A spooled writer (service writes: their producer may take hours).
    std::unique_ptr<writer> create(std::string owner);
    // A writer for an upload over HTTP: direct on PostgreSQL while a streaming lease is free,
    // spooled otherwise (and always on SQLite).
    std::unique_ptr<writer> create_upload(std::string owner);
    // nullptr when the file does not exist for this owner (or expired).
    std::unique_ptr<reader> open(std::string_view owner, std::string_view id);
    std::optional<file_record> find(std::string_view owner, std::string_view id);
    // Throws unknown_after when `after` names no visible file of the owner.
    list_page list(std::string_view owner, const list_query& q);
    // False when there was nothing visible to delete.
    bool remove(std::string_view owner, std::string_view id);
    // Deletes up to `limit` expired files (and their chunks) in one transaction; returns how
    // many. Several hosts may run it at once on one PostgreSQL (SKIP LOCKED).
    std::size_t purge_expired(std::size_t limit);

private:
    std::string chunk(soci::session& s, std::string_view id, std::int64_t seq);
    list_page list_in(soci::session& s, std::string_view owner, const list_query& q);
    std::size_t purge_in(soci::session& s, std::size_t limit);

    sql::pool& pool_;
    std::filesystem::path staging_folder_;
    sql::owner_rewrite migrated_owners_;
};

}  // namespace aq::files
