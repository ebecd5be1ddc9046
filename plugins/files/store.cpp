#include "store.hpp"

#include "sql/dialect.hpp"
#include "sql/legacy_owner.hpp"
#include "sql/migrations.hpp"
#include "sql/transaction.hpp"
#include "test_pause.hpp"

#include <aqueduct/plugin.hpp>

#include <soci/soci.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace aq::files {
namespace {

using aq::sql::backend;

std::vector<sql::migration> migrations(const sql::name_set& legacy_teams, sql::owner_rewrite& rewritten) {
    return {
        {1,
         {
             "create table files (id text primary key, owner text not null, filename text not null,"
             " purpose text not null, bytes integer not null, created_at integer not null,"
             " expires_at integer not null, sha256 text not null, chunk_bytes integer not null)",
             "create index files_owner_created on files (owner, created_at, id)",
             "create index files_expires on files (expires_at)",
             "create table file_chunks (file_id text not null references files (id) on delete cascade,"
             " seq integer not null, data blob not null, primary key (file_id, seq))",
         },
         {
             "create table files (id text primary key, owner text not null, filename text not null,"
             " purpose text not null, bytes bigint not null, created_at bigint not null,"
             " expires_at bigint not null, sha256 text not null, chunk_bytes integer not null)",
             "create index files_owner_created on files (owner, created_at, id)",
             "create index files_expires on files (expires_at)",
             "create table file_chunks (file_id text not null references files (id) on delete cascade,"
             " seq integer not null, data bytea not null, primary key (file_id, seq))",
             // Chunks are mostly incompressible or not worth the CPU at 1 MiB/row: store them
             // out of line without pglz, which is what keeps writes near libpq's throughput.
             "alter table file_chunks alter column data set storage external",
         }},
        // Owner keys carry their kind: "alice" -> "user:alice", a listed team -> "team:NAME".
        {2,
         {},
         {},
         [&legacy_teams, &rewritten](soci::session& s, backend) {
             rewritten = sql::rewrite_legacy_owners(s, "files", "owner", legacy_teams);
         }},
    };
}

constexpr const char* record_columns =
    "id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes";

// SOCI's into() targets for one files row.
struct record_row {
    file_record r;
    long long bytes = 0, created_at = 0, expires_at = 0;
    int chunk_bytes = 0;

    file_record take() {
        r.bytes = static_cast<std::uint64_t>(bytes);
        r.created_at = created_at;
        r.expires_at = expires_at;
        r.chunk_bytes = static_cast<std::uint32_t>(chunk_bytes);
        return r;
    }
};

std::optional<file_record> find_in(soci::session& s, std::string_view owner, std::string_view id) {
    record_row row;
    std::string o(owner), i(id);
    long long now = unix_now();
    soci::statement st = (s.prepare << "select " + std::string(record_columns) +
                                           " from files where owner = :o and id = :i and expires_at > :n",
                          soci::into(row.r.id), soci::into(row.r.owner), soci::into(row.r.filename),
                          soci::into(row.r.purpose), soci::into(row.bytes), soci::into(row.created_at),
                          soci::into(row.expires_at), soci::into(row.r.sha256), soci::into(row.chunk_bytes),
                          soci::use(o), soci::use(i), soci::use(now));
    st.execute();
    if (!st.fetch()) return std::nullopt;
    return row.take();
}

}  // namespace

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

store::store(sql::pool& pool, std::filesystem::path staging_folder, const sql::name_set& legacy_teams)
    : pool_(pool), staging_folder_(std::move(staging_folder)) {
    pool_.run([&](soci::session& s) { sql::migrate(s, pool_.kind(), "files", migrations(legacy_teams, migrated_owners_)); });
}

// ---- writer ------------------------------------------------------------------------------

store::writer::writer(store& s, std::string owner, sql::session_lease direct)
    : store_(s), session_(std::move(direct)), id_(aq::random_id("file-")), owner_(std::move(owner)) {
    if (!session_) spool_ = std::make_unique<spool>(s.staging_folder_);
    else session_.run([&](soci::session&) { begin(); });
}

// Opens the transaction and inserts the row the chunks reference. The row stays invisible:
// other sessions do not see uncommitted rows, and expires_at = 0 hides it even from this one.
void store::writer::begin() {
    if (!session_) session_ = store_.pool_.lease();
    tx_ = std::make_unique<sql::write_transaction>(*session_, store_.kind());
    int cb = static_cast<int>(chunk_bytes);
    *session_ << "insert into files (id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes)"
                 " values (:i, :o, '', '', 0, 0, 0, '', :c)",
        soci::use(id_), soci::use(owner_), soci::use(cb);
    buffer_.reserve(chunk_bytes);
}

store::writer::~writer() {
    tx_.reset();  // rolls back when not committed, before the session returns to the pool
}

void store::writer::write(std::string_view data) {
    bytes_ += data.size();
    hash_.update(data);
    if (spool_) return spool_->append(data);
    while (!data.empty()) {
        std::size_t take = std::min(chunk_bytes - buffer_.size(), data.size());
        buffer_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (buffer_.size() == chunk_bytes) {
            session_.run([&](soci::session&) { flush(); });
            // Test-only (test_pause.hpp): an upload with content in the database, not committed.
            pause_point("upload_chunk_written");
        }
    }
}

void store::writer::flush() {
    if (buffer_.empty()) return;
    sql::dialect(store_.kind())
        .execute(*session_, "insert into file_chunks (file_id, seq, data) values ($1, $2, $3)",
                 {sql::param::text(id_), sql::param::integer(seq_), sql::param::blob(buffer_)});
    ++seq_;
    buffer_.clear();
}

file_record store::writer::commit(std::string_view filename, std::string_view purpose, std::int64_t lifetime_seconds,
                                  const quota& limit) {
    try {
        return finish(filename, purpose, lifetime_seconds, limit);
    } catch (...) {
        session_.rethrow_classified();
    }
}

file_record store::writer::finish(std::string_view filename, std::string_view purpose, std::int64_t lifetime_seconds,
                                  const quota& limit) {
    if (spool_) {
        // The transaction starts now and lasts as long as a local copy of the staged content.
        begin();
        spool_->replay(chunk_bytes, [&](std::string_view block) {
            buffer_.assign(block);
            flush();
        });
        spool_.reset();
    }
    flush();
    std::string o = owner_;
    if (limit.bytes || limit.files) {
        if (store_.kind() == backend::postgresql) {
            // Serializes the check-then-commit of one owner's concurrent uploads (the SQLite
            // write lock already does). Key space 0x61716669 ("aqfi") + hash of the owner.
            *session_ << "select pg_advisory_xact_lock(1634821737, hashtext(:o))", soci::use(o);
        }
        long long count = 0, total = 0, now = unix_now();
        *session_ << "select count(*), cast(coalesce(sum(bytes), 0) as bigint) from files"
                     " where owner = :o and expires_at > :n and id <> :i",
            soci::into(count), soci::into(total), soci::use(o), soci::use(now), soci::use(id_);
        if (limit.files && static_cast<std::uint64_t>(count) + 1 > limit.files)
            throw quota_exceeded("Storage quota exceeded: at most " + std::to_string(limit.files) +
                                 " files may be stored.");
        if (limit.bytes && static_cast<std::uint64_t>(total) + bytes_ > limit.bytes)
            throw quota_exceeded("Storage quota exceeded: at most " + std::to_string(limit.bytes) +
                                 " bytes may be stored.");
    }
    file_record r;
    r.id = id_;
    r.owner = owner_;
    r.filename = std::string(filename);
    r.purpose = std::string(purpose);
    r.sha256 = hash_.hex();
    r.bytes = bytes_;
    r.created_at = unix_now();
    r.expires_at = r.created_at + lifetime_seconds;
    r.chunk_bytes = chunk_bytes;
    long long b = static_cast<long long>(r.bytes), c = r.created_at, e = r.expires_at;
    *session_ << "update files set filename = :f, purpose = :p, bytes = :b, created_at = :c, expires_at = :e,"
                 " sha256 = :h where id = :i",
        soci::use(r.filename), soci::use(r.purpose), soci::use(b), soci::use(c), soci::use(e), soci::use(r.sha256),
        soci::use(id_);
    tx_->commit();
    committed_ = true;
    tx_.reset();
    session_.reset();  // back to the pool now, not when the caller drops the writer
    return r;
}

std::unique_ptr<store::writer> store::create(std::string owner) {
    return std::unique_ptr<writer>(new writer(*this, std::move(owner), {}));
}

std::unique_ptr<store::writer> store::create_upload(std::string owner) {
    sql::session_lease direct;
    if (kind() == backend::postgresql) direct = pool_.try_lease_streaming();
    return std::unique_ptr<writer>(new writer(*this, std::move(owner), std::move(direct)));
}

// ---- reader ------------------------------------------------------------------------------

store::reader::reader(store& s, file_record record)
    : store_(s), record_(std::move(record)), left_(record_.bytes) {}

void store::reader::seek(std::uint64_t offset) {
    offset = std::min(offset, record_.bytes);
    std::uint64_t cb = record_.chunk_bytes ? record_.chunk_bytes : chunk_bytes;
    seq_ = static_cast<std::int64_t>(offset / cb);
    skip_ = static_cast<std::size_t>(offset % cb);
    left_ = record_.bytes - offset;
}

std::string store::reader::next() {
    if (left_ == 0) return {};
    std::string data =
        store_.pool_.run([&](soci::session& s) { return store_.chunk(s, record_.id, seq_); });
    ++seq_;
    if (skip_) {
        data.erase(0, std::min(skip_, data.size()));
        skip_ = 0;
    }
    if (data.empty()) throw gone("file content ended early: " + record_.id);
    if (data.size() > left_) data.resize(static_cast<std::size_t>(left_));
    left_ -= data.size();
    return data;
}

std::string store::chunk(soci::session& s, std::string_view id, std::int64_t seq) {
    auto data = sql::dialect(kind()).fetch(s, "select data from file_chunks where file_id = $1 and seq = $2",
                                           {sql::param::text(id), sql::param::integer(seq)});
    if (!data) throw gone("file content is gone: " + std::string(id));
    return std::move(*data);
}

std::unique_ptr<store::reader> store::open(std::string_view owner, std::string_view id) {
    auto record = pool_.run([&](soci::session& s) { return find_in(s, owner, id); });
    if (!record) return nullptr;
    return std::unique_ptr<reader>(new reader(*this, std::move(*record)));
}

// ---- queries -----------------------------------------------------------------------------

std::optional<file_record> store::find(std::string_view owner, std::string_view id) {
    return pool_.run([&](soci::session& s) { return find_in(s, owner, id); });
}

store::list_page store::list(std::string_view owner, const list_query& q) {
    return pool_.run([&](soci::session& s) { return list_in(s, owner, q); });
}

store::list_page store::list_in(soci::session& s, std::string_view owner, const list_query& q) {
    std::string o(owner);
    long long now = unix_now();
    long long after_created = 0;
    std::string after_id;
    if (q.after) {
        soci::indicator ind = soci::i_null;
        after_id = *q.after;
        s << "select created_at from files where owner = :o and id = :i and expires_at > :n",
            soci::into(after_created, ind), soci::use(o), soci::use(after_id), soci::use(now);
        if (!s.got_data() || ind != soci::i_ok) throw unknown_after("No such File object: " + after_id);
    }
    std::string sql = "select " + std::string(record_columns) + " from files where owner = :o and expires_at > :n";
    std::string purpose = q.purpose.value_or("");
    if (q.purpose) sql += " and purpose = :p";
    const char* cmp = q.ascending ? ">" : "<";
    if (q.after)
        sql += std::string(" and (created_at ") + cmp + " :c1 or (created_at = :c2 and id " + cmp + " :a))";
    sql += q.ascending ? " order by created_at asc, id asc" : " order by created_at desc, id desc";
    long long fetch = static_cast<long long>(q.limit) + 1;  // one more tells whether there is more
    sql += " limit :l";

    record_row row;
    soci::statement st(s);
    st.exchange(soci::into(row.r.id));
    st.exchange(soci::into(row.r.owner));
    st.exchange(soci::into(row.r.filename));
    st.exchange(soci::into(row.r.purpose));
    st.exchange(soci::into(row.bytes));
    st.exchange(soci::into(row.created_at));
    st.exchange(soci::into(row.expires_at));
    st.exchange(soci::into(row.r.sha256));
    st.exchange(soci::into(row.chunk_bytes));
    st.exchange(soci::use(o));
    st.exchange(soci::use(now));
    if (q.purpose) st.exchange(soci::use(purpose));
    if (q.after) {
        st.exchange(soci::use(after_created));
        st.exchange(soci::use(after_created));
        st.exchange(soci::use(after_id));
    }
    st.exchange(soci::use(fetch));
    st.alloc();
    st.prepare(sql);
    st.define_and_bind();
    st.execute();

    list_page page;
    while (st.fetch()) {
        if (page.files.size() == q.limit) {
            page.has_more = true;
            break;
        }
        page.files.push_back(row.take());
    }
    return page;
}

bool store::remove(std::string_view owner, std::string_view id) {
    return pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, kind());
        std::string o(owner), i(id);
        long long now = unix_now();
        soci::statement st = (s.prepare << "delete from files where owner = :o and id = :i and expires_at > :n",
                              soci::use(o), soci::use(i), soci::use(now));
        st.execute(true);
        bool removed = st.get_affected_rows() > 0;
        tx.commit();
        return removed;
    });
}

std::size_t store::purge_expired(std::size_t limit) {
    return pool_.run([&](soci::session& s) { return purge_in(s, limit); });
}

std::size_t store::purge_in(soci::session& s, std::size_t limit) {
    sql::write_transaction tx(s, kind());
    long long now = unix_now(), n = static_cast<long long>(limit);
    // SKIP LOCKED: a second host running the same job at the same moment takes other rows
    // instead of waiting on (or deadlocking with) this one's.
    std::string sql = kind() == backend::postgresql
                          ? "delete from files where id in (select id from files where expires_at <= :n"
                            " order by expires_at limit :l for update skip locked)"
                          : "delete from files where id in (select id from files where expires_at <= :n"
                            " order by expires_at limit :l)";
    soci::statement st = (s.prepare << sql, soci::use(now), soci::use(n));
    st.execute(true);
    auto purged = static_cast<std::size_t>(std::max<long long>(0, st.get_affected_rows()));
    tx.commit();
    return purged;
}

}  // namespace aq::files
