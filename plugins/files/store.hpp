// Files: their metadata rows in SQL (SQLite or PostgreSQL, through SOCI) and their content in a
// content store (content_store.hpp: filesystem, database or s3).
//
// Schema:
//   files(id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes,
//         state, store, content_key)                                            (migrations 1-3)
//   file_chunks(file_id -> files.id on delete cascade, seq, data)    the database store's chunks
// Migration 2 rewrote owners from bare names to owner keys ("user:NAME", "team:NAME"); migration
// 3 added state, store and content_key (rows from before are "ready" in the database store).
//
// A row's state:
//   writing    a writer's intent: its content may exist under (store, content_key) and is not
//              visible; expires_at is the writer's lease, renewed while it writes
//   ready      a visible file, until expires_at
//   deleting   deleted or expired; its content is being removed, expires_at is that lease
//   part       a part of an Upload (uploads.hpp): never visible as a file; filename holds the
//              Upload's id, expires_at the Upload's (0 once it is completed or cancelled), so
//              the purge removes it like an expired file
// Every read filters by owner, state = 'ready' and expires_at > now, so another owner's file, an
// expired one and one being written are all simply "not found", whether or not the purge ran.
//
// Writing a file follows content_store.hpp's protocol: the writer records its intent ("writing"
// row) before its content store creates anything that would outlive a crash, seals the content,
// then flips the row to "ready" in one short transaction that also checks the owner's quota.
// Nothing holds a transaction or a session across an upload. A writer destroyed uncommitted
// removes what it wrote; whatever a crash (or a failure to clean up) leaves has a row whose lease
// runs out, and purge_expired() removes its content and the row, as it does for expired files.
//
// A database that cannot be reached, or a pool without a free session, surfaces as
// sql::unavailable from any method, a content store that cannot be reached as
// content_unavailable; nothing half-written becomes visible.
//
// Every method may be called from any thread. A reader borrows a session (or a store request)
// per piece of content, so a slow consumer never pins one.
#pragma once

#include "content_stores.hpp"
#include "file_record.hpp"
#include "sha256.hpp"
#include "write_behind.hpp"
#include "sql/dialect.hpp"
#include "sql/legacy_owner.hpp"
#include "sql/pool.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace soci {
class session;
}

namespace aq::files {

// Unix seconds now.
std::int64_t unix_now();

class store {
public:
    // Thrown by commit when the owner's quota would be exceeded.
    struct quota_exceeded : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    // The file (or its content) disappeared: deleted, purged, or a write whose lease ran out.
    struct gone : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    struct quota {
        std::uint64_t bytes = 0;  // 0 = unlimited
        std::uint64_t files = 0;
    };

    // Streams a new file into the current content store; visible once committed.
    class writer {
    public:
        ~writer();  // removes what was written unless committed
        writer(const writer&) = delete;
        writer& operator=(const writer&) = delete;

        void write(std::string_view data);
        std::uint64_t bytes() const noexcept { return bytes_; }
        const std::string& id() const noexcept { return id_; }

        // Seals the content, checks the owner's quota (counting this file) and makes the file
        // visible. created_at is now; expires_at = created_at + lifetime_seconds. A writer that
        // went longer than orphan_grace_seconds without a write has been abandoned (the purge
        // may have removed its content): write and commit then throw content_unavailable.
        // `also` runs in the same transaction, after the flip (an Upload's completion records its
        // file there); it may throw, which rolls the commit back.
        file_record commit(std::string_view filename, std::string_view purpose, std::int64_t lifetime_seconds,
                           const quota& limit, const std::function<void(soci::session&)>& also = {});
        // Seals the content as a part of the Upload `upload_id` (state "part", expires_at the
        // Upload's), `also` in the same transaction (the Upload's checks). No quota: parts are
        // counted when the Upload completes into a file.
        file_record commit_part(const std::string& upload_id, std::int64_t expires_at,
                                const std::function<void(soci::session&)>& also);

        // Appends the content of `part` (any store's): the store concatenates where it can
        // (content_writer::append), else it is streamed through a bounded buffer. Content
        // appended this way is not hashed here: commit then takes the SHA-256 the caller
        // computed over the whole content (adopt_sha256).
        void append(const file_record& part, bool last);
        void adopt_sha256(std::string hex) { adopted_sha256_ = std::move(hex); }

    private:
        friend class store;
        writer(store& s, std::string owner, std::uint64_t max_bytes);
        void record_intent();
        void renew();
        void abandon() noexcept;
        struct finish_as {
            std::string_view state, filename, purpose;
            std::int64_t lifetime_seconds = 0;         // expires_at = created_at + this, unless
            std::optional<std::int64_t> expires_at;    // given
            quota limit;
            const std::function<void(soci::session&)>* also = nullptr;
        };
        file_record finish(const finish_as& as);

        store& store_;
        content_store& target_;
        std::string id_, owner_;
        std::unique_ptr<content_writer> content_;
        sha256 hash_;
        // Hashes and stores the bytes beside the handler. The lease (record_intent, renew) is
        // kept on its thread too, where the content store asks for it; the caller reads
        // intent_recorded_ only after finish() or cancel().
        write_behind behind_;
        std::int64_t handed_at_ = 0;  // when write() last made behind_ pass its partial block on
        std::int64_t hand_every_ = 0; // seconds: the lease's third, or less if the content writer asks
        std::uint64_t bytes_ = 0;
        bool intent_recorded_ = false, committed_ = false, paused_ = false, appended_ = false;
        std::string adopted_sha256_;
        std::int64_t renewed_at_ = 0;
    };

    // Reads a file's content, from any offset, wherever it is stored. A file whose content moves
    // to another store while it is read (aqueduct-files move) is followed there.
    class reader {
    public:
        const file_record& info() const noexcept { return record_; }
        // Opens the content for `length` bytes from `offset` (within the file). Throws
        // store::gone when the content is not there.
        void open_range(std::uint64_t offset, std::uint64_t length);
        // The next bytes of the range; 0 at its end. Throws store::gone if the file vanished.
        std::size_t read(std::span<char> buf);
        // An open descriptor of a regular file holding the content at the file's own offsets
        // (for sendfile), owned by the caller; -1 when its store has none. After open_range.
        int release_file();

    private:
        friend class store;
        reader(store& s, file_record record) : store_(s), record_(std::move(record)) {}
        bool follow_move();

        store& store_;
        file_record record_;
        std::unique_ptr<content_reader> content_;
        std::uint64_t position_ = 0, end_ = 0;
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

    struct options {
        // Writes that show no life for this long are abandoned (config orphan_grace_seconds).
        std::uint32_t orphan_grace_seconds = 600;
        // Where an upload keeps scratch files (the batch validator's log of ids).
        std::filesystem::path scratch_folder;
        // Rows of a database from before owner keys get them by sql::legacy_owner_key.
        sql::name_set legacy_teams;
        // SQLite only: end the leases of "writing" rows at start (the gateway, which is the only
        // writer of its SQLite database); a tool running beside it must not.
        bool end_stale_writes = true;
    };

    // Migrates the schema and checks that every store the rows name is set up in `stores`. On
    // SQLite, whose database one gateway alone writes, "writing" rows left by an earlier process
    // are dead: their leases are ended so the next purge removes what they wrote. Throws
    // std::runtime_error when a file's store is not set up.
    store(sql::pool& pool, const content_stores& stores, options opts);

    // What the migration to owner keys rewrote when this store opened the database (zero when
    // the database was already migrated).
    const sql::owner_rewrite& migrated_owners() const noexcept { return migrated_owners_; }
    // How many "writing" rows of an earlier process the SQLite start-up check ended.
    std::size_t abandoned_at_start() const noexcept { return abandoned_at_start_; }

    sql::backend kind() const noexcept { return pool_.kind(); }
    const content_stores& stores() const noexcept { return stores_; }
    const std::filesystem::path& scratch_folder() const noexcept { return options_.scratch_folder; }

    // A new file of `owner` in the current content store, of at most `max_bytes` (the caller's
    // limit: content_store::create).
    std::unique_ptr<writer> create(std::string owner, std::uint64_t max_bytes);
    // nullptr when the file does not exist for this owner (or expired). Reads metadata only.
    std::unique_ptr<reader> open(std::string_view owner, std::string_view id);
    std::optional<file_record> find(std::string_view owner, std::string_view id);
    // The part `row_id` of the owner's Upload `upload_id` (a row in state "part"), whatever its
    // expiry (the Upload's own status decides); nullopt when there is none.
    std::optional<file_record> find_part(std::string_view owner, std::string_view upload_id, std::string_view row_id);
    // A reader of a row the caller found itself (an Upload's part, which find() never returns).
    std::unique_ptr<reader> open_record(file_record record);
    // Throws unknown_after when `after` names no visible file of the owner.
    list_page list(std::string_view owner, const list_query& q);
    // Deletes a visible file: invisible at once, its content removed (or left to the purge when
    // its store cannot be reached). False when there was nothing visible to delete.
    bool remove(std::string_view owner, std::string_view id);
    // Claims up to `limit` rows whose time is up (expired files, abandoned writes, removals that
    // failed) and removes their content and rows. Several hosts may run it at once on one
    // PostgreSQL (claims skip each other's rows). Returns how many rows it claimed.
    std::size_t purge_expired(std::size_t limit);
    // Aborts unfinished S3 multipart uploads that no live writer holds (when the s3 store is set
    // up). Returns how many.
    std::size_t sweep_uploads();

    // ---- for moving content between stores (mover.hpp) ------------------------------------
    // A "writing" row `intent_id` ("move-...", aq::random_id) that stands for content being
    // written at (store, key) outside any file, with a lease. Removed with that content by the
    // purge when its lease runs out.
    void record_move_intent(const std::string& intent_id, std::string_view store, std::string_view key);
    // Extends the intent's lease; call it at least every lease_renewal(). Throws gone when the
    // lease was ended meanwhile.
    void renew_move_intent(const std::string& intent_id);
    // A third of orphan_grace_seconds (at least a second): how often a live writer renews.
    std::chrono::seconds lease_renewal() const noexcept;
    // In one transaction: points the ready file `file` (as read before the copy) at (to_store,
    // key) and turns the intent row into a "deleting" row for the old content. False when the
    // file changed meanwhile (deleted, expired, moved by someone else): nothing was switched.
    // Throws gone, switching nothing, when the intent's lease ran out or was ended (a gateway
    // restarted on SQLite ends every "writing" row's): the purge may be removing the copy.
    bool switch_content(const file_record& file, const std::string& intent_id, content_store& to, const std::string& key);
    // Removes the content a "deleting" or "writing" row stands for, then the row; false when the
    // store could not (the purge tries again once the row's lease runs out).
    bool drop_content(const std::string& row_id, const std::string& store_name, const std::string& key,
                      bool abandoned) noexcept;
    // Ready files not in `store`, after `after_id` in id order, at most `limit`.
    std::vector<file_record> files_outside(std::string_view store, std::string_view after_id, std::size_t limit);
    // How many ready files (and bytes) are not in `store`.
    std::pair<std::uint64_t, std::uint64_t> count_outside(std::string_view store);

private:
    friend class uploads;  // the Uploads API's tables live beside these (uploads.hpp)
    std::int64_t lease_until() const;
    void check_stores_in_use();

    sql::pool& pool_;
    sql::dialect dialect_;
    const content_stores& stores_;
    options options_;
    sql::owner_rewrite migrated_owners_;
    std::size_t abandoned_at_start_ = 0;
};

}  // namespace aq::files
