#include "store.hpp"

#include "database_store.hpp"
#include "s3_store.hpp"
#include "test_pause.hpp"

#include "sql/legacy_owner.hpp"
#include "sql/migrations.hpp"
#include "sql/transaction.hpp"

#include <aqueduct/plugin.hpp>

#include <soci/soci.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace aq::files {
namespace {

using aq::sql::backend;

std::vector<sql::migration> migrations(const sql::name_set& legacy_teams, sql::owner_rewrite& rewritten) {
    // Rows from before content stores are files in the database store, keyed by their id.
    const std::vector<std::string> content_stores = {
        "alter table files add column state text not null default 'ready'",
        "alter table files add column store text not null default 'database'",
        "alter table files add column content_key text not null default ''",
        "update files set content_key = id",
        "create index files_content on files (store, content_key)",
    };
    const std::vector<std::string> uploads_schema = {
        "create table uploads (id text primary key, owner text not null, filename text not null,"
        " purpose text not null, mime_type text not null, bytes bigint not null, created_at bigint not null,"
        " expires_at bigint not null, status text not null, file_lifetime bigint not null,"
        " file_id text not null default '', claim text not null default '', claimed_until bigint not null default 0)",
        "create index uploads_expires on uploads (expires_at)",
        "create index files_parts on files (filename) where state = 'part'",
    };
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
        // Content stores: a row's state, and where its content is.
        {3, content_stores, content_stores},
        // The Uploads API (uploads.hpp): Uploads, and the lookup of an Upload's parts.
        {4, uploads_schema, uploads_schema},
    };
}

constexpr const char* record_columns =
    "id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes, store, content_key";
// What every read of a file requires: visible, and not expired.
constexpr const char* visible = "state = 'ready' and expires_at > :n";

// SOCI's into() targets for one files row.
struct record_row {
    file_record r;
    long long bytes = 0, created_at = 0, expires_at = 0;
    int chunk_bytes = 0;

    void bind(soci::statement& st) {
        st.exchange(soci::into(r.id));
        st.exchange(soci::into(r.owner));
        st.exchange(soci::into(r.filename));
        st.exchange(soci::into(r.purpose));
        st.exchange(soci::into(bytes));
        st.exchange(soci::into(created_at));
        st.exchange(soci::into(expires_at));
        st.exchange(soci::into(r.sha256));
        st.exchange(soci::into(chunk_bytes));
        st.exchange(soci::into(r.store));
        st.exchange(soci::into(r.content_key));
    }
    file_record take() {
        r.bytes = static_cast<std::uint64_t>(bytes);
        r.created_at = created_at;
        r.expires_at = expires_at;
        r.chunk_bytes = static_cast<std::uint32_t>(chunk_bytes);
        return r;
    }
};

// A prepared statement from pieces: `bind_row` binds the into() targets, then `uses` the values.
template <class Uses>
soci::statement prepared(soci::session& s, const std::string& sql, record_row* row, Uses&& uses) {
    soci::statement st(s);
    if (row) row->bind(st);
    uses(st);
    st.alloc();
    st.prepare(sql);
    st.define_and_bind();
    return st;
}

// The lookup of a visible file by owner and id, kept prepared with its session
// (sql::session_lease::kept): a metadata GET is mostly this one query, and preparing it each
// time took a quarter of the gateway's CPU under wrk (perf, files_bench). The statement is
// bound to these members once.
struct kept_find {
    record_row row;
    std::string owner, id;
    long long now = 0;
    soci::statement st;

    explicit kept_find(soci::session& s)
        : st(prepared(s, "select " + std::string(record_columns) + " from files where owner = :o and id = :i and " + visible,
                      &row, [this](soci::statement& q) {
                          q.exchange(soci::use(owner));
                          q.exchange(soci::use(id));
                          q.exchange(soci::use(now));
                      })) {}
};
constexpr int kept_find_tag = 0;

long long affected(soci::statement& st) { return std::max<long long>(0, st.get_affected_rows()); }

}  // namespace

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

store::store(sql::pool& pool, const content_stores& stores, options opts)
    : pool_(pool), dialect_(pool.kind()), stores_(stores), options_(std::move(opts)) {
    pool_.run([&](soci::session& s) {
        sql::migrate(s, pool_.kind(), "files", migrations(options_.legacy_teams, migrated_owners_));
    });
    check_stores_in_use();
    if (kind() == backend::sqlite && options_.end_stale_writes) {
        abandoned_at_start_ = pool_.run([&](soci::session& s) {
            sql::write_transaction tx(s, kind());
            soci::statement st = (s.prepare << "update files set expires_at = 0 where state = 'writing'");
            st.execute(true);
            tx.commit();
            return static_cast<std::size_t>(affected(st));
        });
    }
}

void store::check_stores_in_use() {
    std::vector<std::string> names = pool_.run([&](soci::session& s) {
        std::vector<std::string> out;
        std::string name;
        soci::statement st = (s.prepare << "select distinct store from files", soci::into(name));
        st.execute();
        while (st.fetch()) out.push_back(name);
        return out;
    });
    for (const auto& name : names)
        if (!stores_.find(name))
            throw std::runtime_error("plugins.files: files are stored in the \"" + name +
                                     "\" content store, which this config does not set up (plugins.files." + name +
                                     "); they would be unreadable");
}

std::int64_t store::lease_until() const { return unix_now() + options_.orphan_grace_seconds; }

// ---- writer --------------------------------------------------------------------------------

store::writer::writer(store& s, std::string owner, std::uint64_t max_bytes)
    : store_(s), target_(s.stores_.current()), id_(aq::random_id("file-")), owner_(std::move(owner)),
      // Two stages, so that a block is stored (a database round trip, an S3 part) while the
      // next one is hashed.
      behind_({[this](std::string_view block) { hash_.update(block); },
               [this](std::string_view block) {
                   content_->write(block);
                   renew();
               }}) {
    content_ = target_.create(id_, max_bytes, [this] { record_intent(); });
    handed_at_ = unix_now();
    hand_every_ = store_.options_.orphan_grace_seconds / 3;
    if (std::int64_t most = content_->max_wait_seconds(); most > 0) hand_every_ = std::min(hand_every_, most);
}

store::writer::~writer() {
    if (!committed_) abandon();
}

// The "writing" row, in a transaction of its own, before the content store creates anything a
// crash would leave: from here on the purge can find what this writer leaves behind.
void store::writer::record_intent() {
    const long long now = unix_now(), until = store_.lease_until();
    const int cb = static_cast<int>(database_store::chunk_bytes);
    const std::string name(target_.name());
    store_.pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, store_.kind());
        s << "insert into files (id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes,"
             " state, store, content_key) values (:i, :o, '', '', 0, :c, :e, '', :cb, 'writing', :s, :k)",
            soci::use(id_), soci::use(owner_), soci::use(now), soci::use(until), soci::use(cb), soci::use(name),
            soci::use(id_);
        tx.commit();
    });
    intent_recorded_ = true;
    renewed_at_ = now;
}

// Extends the lease of the "writing" row while the writer is alive (every third of the grace).
void store::writer::renew() {
    const std::int64_t now = unix_now();
    if (!intent_recorded_ || now - renewed_at_ < store_.options_.orphan_grace_seconds / 3) return;
    const long long until = store_.lease_until();
    long long n = store_.pool_.run([&](soci::session& s) {
        soci::statement st = (s.prepare << "update files set expires_at = :e where id = :i and state = 'writing'",
                              soci::use(until), soci::use(id_));
        st.execute(true);
        return affected(st);
    });
    if (n == 0) throw content_unavailable("the write of " + id_ + " was abandoned: it showed no life for orphan_grace_seconds");
    renewed_at_ = now;
}

void store::writer::write(std::string_view data) {
    bytes_ += data.size();
    behind_.push(data);
    // A slow upload fills its blocks slowly: its bytes go on to the store, and its lease is
    // renewed, at least every third of the grace all the same (or as often as the store's
    // writer needs bytes: content_writer::max_wait_seconds). Not waiting for the stages, so
    // a fast upload loses nothing by it.
    if (const std::int64_t now = unix_now(); now - handed_at_ >= hand_every_) {
        behind_.pass_on();
        handed_at_ = now;
    }
    if (!paused_ && bytes_ >= database_store::chunk_bytes) {
        paused_ = true;
        // Test-only (test_pause.hpp): an upload whose content is partly in its store.
        behind_.flush();
        pause_point("content_written");
    }
}

file_record store::writer::commit(std::string_view filename, std::string_view purpose, std::int64_t lifetime_seconds,
                                  const quota& limit, const std::function<void(soci::session&)>& also) {
    finish_as as;
    as.state = "ready";
    as.filename = filename;
    as.purpose = purpose;
    as.lifetime_seconds = lifetime_seconds;
    as.limit = limit;
    as.also = also ? &also : nullptr;
    return finish(as);
}

file_record store::writer::commit_part(const std::string& upload_id, std::int64_t expires_at,
                                       const std::function<void(soci::session&)>& also) {
    finish_as as;
    as.state = "part";
    as.filename = upload_id;
    as.purpose = "upload.part";
    as.expires_at = expires_at;
    as.also = also ? &also : nullptr;
    return finish(as);
}

void store::writer::append(const file_record& part, bool last) {
    behind_.flush();  // whatever write() handed over is in the content first (an Upload writes none)
    content_store& from = store_.stores_.get(part.store);
    appended_ = true;
    if (!content_->append(from, part, last)) {
        // Streamed: a bounded buffer, whatever the part's size.
        auto source = from.open(part, 0, part.bytes);
        std::string buffer(256 * 1024, '\0');
        while (std::size_t n = source->read(buffer)) {
            content_->write(std::string_view(buffer.data(), n));
            renew();
        }
    }
    bytes_ += part.bytes;
    renew();
}

file_record store::writer::finish(const finish_as& as) {
    const quota& limit = as.limit;
    behind_.finish();
    content_->seal();
    if (!intent_recorded_) record_intent();  // a store that never asked for one
    // Test-only (test_pause.hpp): the content is durable under its key, the row not yet ready.
    pause_point("content_sealed");

    file_record r;
    r.id = id_;
    r.owner = owner_;
    r.filename = std::string(as.filename);
    r.purpose = std::string(as.purpose);
    if (appended_ && adopted_sha256_.empty()) throw std::logic_error("appended content needs its SHA-256");
    r.sha256 = appended_ ? adopted_sha256_ : hash_.hex();
    const std::string state(as.state);
    r.bytes = bytes_;
    r.chunk_bytes = database_store::chunk_bytes;
    r.store = std::string(target_.name());
    r.content_key = id_;
    store_.pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, store_.kind());
        if (limit.bytes || limit.files) {
            // Serializes one owner's concurrent commits between the check and the flip.
            // Space 0x61716669 ("aqfi").
            store_.dialect_.lock(s, 1634821737, owner_);
            long long count = 0, total = 0, now = unix_now();
            s << "select count(*), cast(coalesce(sum(bytes), 0) as bigint) from files"
                 " where owner = :o and state = 'ready' and expires_at > :n",
                soci::into(count), soci::into(total), soci::use(owner_), soci::use(now);
            if (limit.files && static_cast<std::uint64_t>(count) + 1 > limit.files)
                throw quota_exceeded("Storage quota exceeded: at most " + std::to_string(limit.files) +
                                     " files may be stored.");
            if (limit.bytes && static_cast<std::uint64_t>(total) + bytes_ > limit.bytes)
                throw quota_exceeded("Storage quota exceeded: at most " + std::to_string(limit.bytes) +
                                     " bytes may be stored.");
        }
        r.created_at = unix_now();
        r.expires_at = as.expires_at ? *as.expires_at : r.created_at + as.lifetime_seconds;
        long long b = static_cast<long long>(r.bytes), c = r.created_at, e = r.expires_at;
        soci::statement st =
            (s.prepare << "update files set filename = :f, purpose = :p, bytes = :b, created_at = :c, expires_at = :e,"
                          " sha256 = :h, state = :st where id = :i and state = 'writing'",
             soci::use(r.filename), soci::use(r.purpose), soci::use(b), soci::use(c), soci::use(e),
             soci::use(r.sha256), soci::use(state), soci::use(id_));
        st.execute(true);
        if (affected(st) != 1) throw content_unavailable("the write of " + id_ + " was abandoned: it showed no life for orphan_grace_seconds");
        if (as.also) (*as.also)(s);
        tx.commit();
    });
    committed_ = true;
    content_.reset();
    return r;
}

// Removes what this writer wrote and its row; whatever it cannot remove now keeps a row whose
// lease is ended, for the next purge.
void store::writer::abandon() noexcept {
    behind_.cancel();  // nothing reaches content_ any more
    try {
        content_.reset();  // an unsealed content writer discards its own unnamed or unfinished state
    } catch (...) {
    }
    if (!intent_recorded_) return;
    if (store_.drop_content(id_, std::string(target_.name()), id_, true)) return;
    try {
        store_.pool_.run([&](soci::session& s) {
            s << "update files set expires_at = 0 where id = :i and state = 'writing'", soci::use(id_);
        });
    } catch (...) {
        // The lease runs out on its own.
    }
}

// ---- reader --------------------------------------------------------------------------------

void store::reader::open_range(std::uint64_t offset, std::uint64_t length) {
    position_ = offset;
    end_ = offset + length;
    try {
        content_ = store_.stores_.get(record_.store).open(record_, offset, length);
    } catch (const content_gone&) {
        if (!follow_move()) throw gone("No such File object: " + record_.id);
    }
}

std::size_t store::reader::read(std::span<char> buf) {
    for (;;) {
        try {
            std::size_t n = content_->read(buf);
            position_ += n;
            return n;
        } catch (const content_gone&) {
            if (!follow_move()) throw gone("the content of " + record_.id + " is gone");
        }
    }
}

// The content was not where the row said when it was read: if the file is still there, with
// the same content, somewhere else (moved meanwhile), carry on from there.
bool store::reader::follow_move() {
    auto now = store_.find(record_.owner, record_.id);
    if (!now || now->sha256 != record_.sha256 || now->bytes != record_.bytes ||
        (now->store == record_.store && now->content_key == record_.content_key))
        return false;
    record_ = std::move(*now);
    try {
        content_ = store_.stores_.get(record_.store).open(record_, position_, end_ - position_);
    } catch (const content_gone&) {
        return false;
    }
    return true;
}

int store::reader::release_file() { return content_ ? content_->release_file() : -1; }

// ---- queries -------------------------------------------------------------------------------

std::unique_ptr<store::writer> store::create(std::string owner, std::uint64_t max_bytes) {
    return std::unique_ptr<writer>(new writer(*this, std::move(owner), max_bytes));
}

std::unique_ptr<store::reader> store::open(std::string_view owner, std::string_view id) {
    auto record = find(owner, id);
    if (!record) return nullptr;
    return std::unique_ptr<reader>(new reader(*this, std::move(*record)));
}

std::optional<file_record> store::find_part(std::string_view owner, std::string_view upload_id,
                                            std::string_view row_id) {
    return pool_.run([&](soci::session& s) -> std::optional<file_record> {
        std::string o(owner), u(upload_id), i(row_id);
        record_row row;
        soci::statement st = prepared(s,
                                      "select " + std::string(record_columns) +
                                          " from files where id = :i and owner = :o and filename = :u and state = 'part'",
                                      &row, [&](soci::statement& b) {
                                          b.exchange(soci::use(i));
                                          b.exchange(soci::use(o));
                                          b.exchange(soci::use(u));
                                      });
        st.execute();
        if (!st.fetch()) return std::nullopt;
        return row.take();
    });
}

std::unique_ptr<store::reader> store::open_record(file_record record) {
    return std::unique_ptr<reader>(new reader(*this, std::move(record)));
}

std::optional<file_record> store::find(std::string_view owner, std::string_view id) {
    sql::session_lease lease = pool_.lease();
    return lease.run([&](soci::session&) -> std::optional<file_record> {
        auto& q = lease.kept<kept_find>(&kept_find_tag, [](soci::session& s) { return std::make_unique<kept_find>(s); });
        q.owner.assign(owner);
        q.id.assign(id);
        q.now = unix_now();
        try {
            q.st.execute();
            std::optional<file_record> found;
            if (q.st.fetch()) found = q.row.take();
            dialect_.end_pass(q.st);
            return found;
        } catch (...) {
            lease.forget(&kept_find_tag);  // a statement that failed halfway is not reused
            throw;
        }
    });
}

store::list_page store::list(std::string_view owner, const list_query& q) {
    return pool_.run([&](soci::session& s) {
        std::string o(owner);
        long long now = unix_now();
        long long after_created = 0;
        std::string after_id;
        if (q.after) {
            soci::indicator ind = soci::i_null;
            after_id = *q.after;
            s << "select created_at from files where owner = :o and id = :i and " + std::string(visible),
                soci::into(after_created, ind), soci::use(o), soci::use(after_id), soci::use(now);
            if (!s.got_data() || ind != soci::i_ok) throw unknown_after("No such File object: " + after_id);
        }
        std::string sql =
            "select " + std::string(record_columns) + " from files where owner = :o and " + std::string(visible);
        std::string purpose = q.purpose.value_or("");
        if (q.purpose) sql += " and purpose = :p";
        const char* cmp = q.ascending ? ">" : "<";
        if (q.after)
            sql += std::string(" and (created_at ") + cmp + " :c1 or (created_at = :c2 and id " + cmp + " :a))";
        sql += q.ascending ? " order by created_at asc, id asc" : " order by created_at desc, id desc";
        long long fetch = static_cast<long long>(q.limit) + 1;  // one more tells whether there is more
        sql += " limit :l";

        record_row row;
        soci::statement st = prepared(s, sql, &row, [&](soci::statement& b) {
            b.exchange(soci::use(o));
            b.exchange(soci::use(now));
            if (q.purpose) b.exchange(soci::use(purpose));
            if (q.after) {
                b.exchange(soci::use(after_created));
                b.exchange(soci::use(after_created));
                b.exchange(soci::use(after_id));
            }
            b.exchange(soci::use(fetch));
        });
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
    });
}

bool store::remove(std::string_view owner, std::string_view id) {
    // The row is claimed for its content as read: a move that switches it in between makes the
    // claim miss, and the loop reads it again.
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto record = find(owner, id);
        if (!record) return false;
        const long long until = lease_until(), now = unix_now();
        long long claimed = pool_.run([&](soci::session& s) {
            sql::write_transaction tx(s, kind());
            soci::statement st =
                (s.prepare << "update files set state = 'deleting', expires_at = :e where id = :i and owner = :o and "
                              "store = :s and content_key = :k and " + std::string(visible),
                 soci::use(until), soci::use(record->id), soci::use(record->owner), soci::use(record->store),
                 soci::use(record->content_key), soci::use(now));
            st.execute(true);
            tx.commit();
            return affected(st);
        });
        if (claimed == 0) continue;
        drop_content(record->id, record->store, record->content_key, false);
        return true;
    }
    return false;
}

bool store::drop_content(const std::string& row_id, const std::string& store_name, const std::string& key,
                         bool abandoned) noexcept {
    try {
        stores_.get(store_name).remove(key, abandoned);
        pool_.run([&](soci::session& s) {
            sql::write_transaction tx(s, kind());
            s << "delete from files where id = :i and state <> 'ready'", soci::use(row_id);
            tx.commit();
        });
        return true;
    } catch (...) {
        return false;
    }
}

std::size_t store::purge_expired(std::size_t limit) {
    struct claimed_row {
        std::string id, store, key, state;
    };
    std::vector<claimed_row> claimed = pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, kind());
        long long now = unix_now(), n = static_cast<long long>(limit), until = lease_until();
        std::vector<claimed_row> rows;
        claimed_row r;
        // SKIP LOCKED: a second host running the same job at the same moment takes other rows
        // instead of waiting on (or deadlocking with) this one's.
        soci::statement st = (s.prepare << "select id, store, content_key, state from files where expires_at <= :n"
                                           " order by expires_at limit :l" + std::string(dialect_.skip_locked()),
                              soci::into(r.id), soci::into(r.store), soci::into(r.key), soci::into(r.state),
                              soci::use(now), soci::use(n));
        st.execute();
        while (st.fetch()) rows.push_back(r);
        for (const auto& row : rows)
            s << "update files set state = 'deleting', expires_at = :e where id = :i", soci::use(until),
                soci::use(row.id);
        tx.commit();
        return rows;
    });
    for (const auto& row : claimed) drop_content(row.id, row.store, row.key, row.state != "ready");
    return claimed.size();
}

std::size_t store::sweep_uploads() {
    auto* s3 = dynamic_cast<s3_store*>(stores_.find("s3"));
    if (!s3) return 0;
    return s3->sweep_uploads(std::chrono::seconds(options_.orphan_grace_seconds), [&](const std::string& key) {
        long long live = 0, now = unix_now();
        pool_.run([&](soci::session& s) {
            s << "select count(*) from files where store = 's3' and content_key = :k and state = 'writing'"
                 " and expires_at > :n",
                soci::into(live), soci::use(key), soci::use(now);
        });
        return live > 0;
    });
}

// ---- moves ---------------------------------------------------------------------------------

void store::record_move_intent(const std::string& intent_id, std::string_view store_name, std::string_view key) {
    std::string id = intent_id, name(store_name), k(key);
    const long long now = unix_now(), until = lease_until();
    const int cb = static_cast<int>(database_store::chunk_bytes);
    pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, kind());
        s << "insert into files (id, owner, filename, purpose, bytes, created_at, expires_at, sha256, chunk_bytes,"
             " state, store, content_key) values (:i, '', '', '', 0, :c, :e, '', :cb, 'writing', :s, :k)",
            soci::use(id), soci::use(now), soci::use(until), soci::use(cb), soci::use(name), soci::use(k);
        tx.commit();
    });
}

void store::renew_move_intent(const std::string& intent_id) {
    const long long until = lease_until();
    long long n = pool_.run([&](soci::session& s) {
        soci::statement st = (s.prepare << "update files set expires_at = :e where id = :i and state = 'writing'",
                              soci::use(until), soci::use(intent_id));
        st.execute(true);
        return affected(st);
    });
    if (n == 0) throw gone("the move's lease ran out");
}

std::chrono::seconds store::lease_renewal() const noexcept {
    return std::chrono::seconds(std::max<std::uint32_t>(1, options_.orphan_grace_seconds / 3));
}

bool store::switch_content(const file_record& file, const std::string& intent_id, content_store& to,
                           const std::string& key) {
    const std::string to_name(to.name());
    return pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, kind());
        long long now = unix_now(), until = lease_until();
        // The intent first: once its lease is up the purge may claim it and remove the copy, so
        // the file must not be pointed at the copy. Taking the row here (on PostgreSQL its row
        // lock, which the purge's SKIP LOCKED claim passes over) closes that race either way.
        soci::statement held = (s.prepare << "update files set expires_at = :e where id = :i and state = 'writing'"
                                             " and expires_at > :n",
                                soci::use(until), soci::use(intent_id), soci::use(now));
        held.execute(true);
        if (affected(held) != 1) throw gone("the move's lease ran out before its switch");
        soci::statement moved =
            (s.prepare << "update files set store = :t, content_key = :k where id = :i and store = :s and"
                          " content_key = :ok and sha256 = :h and " + std::string(visible),
             soci::use(to_name), soci::use(key), soci::use(file.id), soci::use(file.store), soci::use(file.content_key),
             soci::use(file.sha256), soci::use(now));
        moved.execute(true);
        if (affected(moved) != 1) return false;  // rolled back
        // The content's final key (the database store re-keys its chunks to the file's id).
        const std::string final_key = to.adopt(s, key, file.id);
        if (final_key != key)
            s << "update files set content_key = :k where id = :i", soci::use(final_key), soci::use(file.id);
        // The intent row now stands for the old content, which the caller (or the purge) removes.
        s << "update files set store = :s, content_key = :k, state = 'deleting', expires_at = :e where id = :i",
            soci::use(file.store), soci::use(file.content_key), soci::use(until), soci::use(intent_id);
        tx.commit();
        return true;
    });
}

std::vector<file_record> store::files_outside(std::string_view store_name, std::string_view after_id,
                                              std::size_t limit) {
    return pool_.run([&](soci::session& s) {
        std::string name(store_name), after(after_id);
        long long now = unix_now(), n = static_cast<long long>(limit);
        record_row row;
        soci::statement st = prepared(s,
                                      "select " + std::string(record_columns) + " from files where store <> :s and id > :a"
                                      " and " + std::string(visible) + " order by id limit :l",
                                      &row, [&](soci::statement& b) {
                                          b.exchange(soci::use(name));
                                          b.exchange(soci::use(after));
                                          b.exchange(soci::use(now));
                                          b.exchange(soci::use(n));
                                      });
        st.execute();
        std::vector<file_record> out;
        while (st.fetch()) out.push_back(row.take());
        return out;
    });
}

std::pair<std::uint64_t, std::uint64_t> store::count_outside(std::string_view store_name) {
    return pool_.run([&](soci::session& s) {
        std::string name(store_name);
        long long count = 0, total = 0, now = unix_now();
        s << "select count(*), cast(coalesce(sum(bytes), 0) as bigint) from files where store <> :s and " +
                 std::string(visible),
            soci::into(count), soci::into(total), soci::use(name), soci::use(now);
        return std::pair{static_cast<std::uint64_t>(count), static_cast<std::uint64_t>(total)};
    });
}

}  // namespace aq::files
