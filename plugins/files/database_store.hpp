// The database content store: content in 1 MiB chunks in the database that holds the metadata
// (content_store.hpp), for a deployment that wants one PostgreSQL and nothing else (or SQLite
// alone).
//
// Table file_chunks(file_id -> files.id on delete cascade, seq, data): a content's key is the id
// of the row that owns its chunks, the file's own for uploads, a move's temporary row for content
// moved in (adopt() re-keys the chunks to the file in the transaction that switches its row).
//
// Each chunk is written in a short transaction of its own, on a streaming lease of the pool
// (sql::pool: at most `upload_sessions` at once, so short requests always find a session), after
// `intent` recorded the "writing" row the chunks reference. Nothing is visible until the caller
// flips that row: no transaction is held across the upload, so SQLite's single write lock is
// taken one chunk at a time, other writers interleave, and nothing needs staging first. A
// writer that dies leaves chunks under a "writing" row, which the purge removes.
//
// Removal deletes a key's chunks 64 at a time, and never those of a file that is "ready" in this
// store: so a late purge of an old row whose key a file took over again (moved out and back in)
// cannot touch the file's live chunks.
//
// Raw bytes go through sql::dialect (libpq binary parameters, sqlite3_bind_blob).
#pragma once

#include "content_store.hpp"

#include "sql/dialect.hpp"
#include "sql/pool.hpp"

namespace aq::files {

class database_store : public content_store {
public:
    static constexpr std::size_t chunk_bytes = 1 << 20;

    // The pool must have streaming leases (pool_options::streaming >= 1).
    explicit database_store(sql::pool& pool);

    std::string_view name() const noexcept override { return "database"; }
    std::unique_ptr<content_writer> create(const std::string& key, std::uint64_t max_bytes,
                                           std::function<void()> intent) override;
    std::unique_ptr<content_reader> open(const file_record& file, std::uint64_t offset, std::uint64_t length) override;
    void remove(const std::string& key, bool abandoned) override;
    std::string adopt(soci::session& session, const std::string& key, const std::string& file_id) override;

private:
    friend class database_writer;
    friend class database_reader;

    sql::pool& pool_;
    sql::dialect dialect_;
};

}  // namespace aq::files
