#include "batch_table.hpp"

#include <soci/soci.h>

namespace batches {

namespace {

const char* const batch_columns =
    "id, owner, endpoint, model, input_file_id, completion_window, status, errors, output_file_id, "
    "error_file_id, metadata, created_at, in_progress_at, expires_at, finalizing_at, completed_at, failed_at, "
    "expired_at, cancelling_at, cancelled_at, total, completed, failed, input_tokens, output_tokens, "
    "total_tokens, cached_tokens, reasoning_tokens, output_expires_after";

const char* const work_columns = "id, owner, status, endpoint, model, expires_at, input_file_id";

// Binds every column of batch_columns, in order, into `b`.
template <class Stmt>
auto into_batch(Stmt&& st, batch_row& b) {
    return std::forward<Stmt>(st), soci::into(b.id), soci::into(b.owner), soci::into(b.endpoint),
           soci::into(b.model), soci::into(b.input_file_id), soci::into(b.completion_window), soci::into(b.status),
           soci::into(b.errors), soci::into(b.output_file_id), soci::into(b.error_file_id), soci::into(b.metadata),
           soci::into(b.created_at), soci::into(b.in_progress_at), soci::into(b.expires_at),
           soci::into(b.finalizing_at), soci::into(b.completed_at), soci::into(b.failed_at),
           soci::into(b.expired_at), soci::into(b.cancelling_at), soci::into(b.cancelled_at), soci::into(b.total),
           soci::into(b.completed), soci::into(b.failed), soci::into(b.usage.input_tokens),
           soci::into(b.usage.output_tokens), soci::into(b.usage.total_tokens), soci::into(b.usage.cached_tokens),
           soci::into(b.usage.reasoning_tokens), soci::into(b.output_expires_after);
}

// Binds work_columns, in order, into `w`.
template <class Stmt>
auto into_work(Stmt&& st, batch_work& w) {
    return std::forward<Stmt>(st), soci::into(w.id), soci::into(w.owner), soci::into(w.status),
           soci::into(w.endpoint), soci::into(w.model), soci::into(w.expires_at), soci::into(w.input_file_id);
}

template <class Row>
std::vector<Row> fetch_all(soci::statement& st, const Row& row) {
    std::vector<Row> out;
    st.execute();
    while (st.fetch()) out.push_back(row);
    return out;
}

// Runs an UPDATE and tells whether it changed exactly one row.
bool changed_one(soci::statement&& st) {
    st.execute(true);
    return st.get_affected_rows() == 1;
}

}  // namespace

void batch_table::insert(const batch_row& b) {
    return pool_.run([&](soci::session& sql) {
        sql << "INSERT INTO batches (id, owner, endpoint, model, input_file_id, completion_window, status, metadata,"
                " created_at, expires_at, output_expires_after) VALUES (:id, :owner, :endpoint, :model, :input,"
                " :window, :status, :metadata, :created, :expires, :oea)",
            soci::use(b.id), soci::use(b.owner), soci::use(b.endpoint), soci::use(b.model), soci::use(b.input_file_id),
            soci::use(b.completion_window), soci::use(b.status), soci::use(b.metadata), soci::use(b.created_at),
            soci::use(b.expires_at), soci::use(b.output_expires_after);
    });
}

std::optional<batch_row> batch_table::get(const std::string& owner, const std::string& id) {
    return pool_.run([&](soci::session& sql) -> std::optional<batch_row> {
        batch_row b;
        into_batch(sql << (std::string("SELECT ") + batch_columns + " FROM batches WHERE id = :id AND owner = :owner"), b),
            soci::use(id), soci::use(owner);
        if (!sql.got_data()) return std::nullopt;
        return b;
    });
}

std::vector<batch_row> batch_table::list(const std::string& owner, const std::string& after, int limit) {
    return pool_.run([&](soci::session& sql) -> std::vector<batch_row> {
        batch_row b;
        long long lim = limit;
        std::string q = std::string("SELECT ") + batch_columns + " FROM batches WHERE owner = :owner";
        long long after_created = 0;
        if (!after.empty()) {
            sql << "SELECT created_at FROM batches WHERE id = :id AND owner = :owner", soci::into(after_created),
                soci::use(after), soci::use(owner);
            if (!sql.got_data()) return {};  // an unknown cursor: nothing after it
            q += " AND (created_at < :c OR (created_at = :c2 AND id < :a))";
        }
        q += " ORDER BY created_at DESC, id DESC LIMIT :lim";
        soci::statement st = after.empty()
            ? (into_batch(sql.prepare << q, b), soci::use(owner), soci::use(lim))
            : (into_batch(sql.prepare << q, b), soci::use(owner), soci::use(after_created), soci::use(after_created),
               soci::use(after), soci::use(lim));
        return fetch_all(st, b);
    });
}

long long batch_table::count_active(const std::string& owner) {
    return pool_.run([&](soci::session& sql) -> long long {
        long long n = 0;
        sql << "SELECT COUNT(*) FROM batches WHERE owner = :o AND status IN"
                " ('validating', 'in_progress', 'finalizing', 'cancelling')",
            soci::into(n), soci::use(owner);
        return n;
    });
}

std::optional<batch_row> batch_table::cancel(const std::string& owner, const std::string& id, long long now_s) {
    pool_.run([&](soci::session& sql) {
        sql << "UPDATE batches SET status = 'cancelling', cancelling_at = :t WHERE id = :id AND owner = :o"
               " AND status IN ('validating', 'in_progress', 'finalizing')",
            soci::use(now_s), soci::use(id), soci::use(owner);
    });
    return get(owner, id);
}

bool batch_table::lease(const std::string& id, const std::string& me, long long now_ms, long long until_ms) {
    return pool_.run([&](soci::session& sql) -> bool {
        return changed_one((sql.prepare << "UPDATE batches SET lease_owner = :me, lease_until = :u WHERE id = :id"
                                           " AND (lease_owner = '' OR lease_owner = :me2 OR lease_until < :now)",
                           soci::use(me), soci::use(until_ms), soci::use(id), soci::use(me), soci::use(now_ms)));
    });
}

bool batch_table::renew(const std::string& id, const std::string& me, long long until_ms) {
    return pool_.run([&](soci::session& sql) -> bool {
        return changed_one((sql.prepare << "UPDATE batches SET lease_until = :u WHERE id = :id AND lease_owner = :me",
                           soci::use(until_ms), soci::use(id), soci::use(me)));
    });
}

void batch_table::release(const std::string& id, const std::string& me) {
    return pool_.run([&](soci::session& sql) {
        sql << "UPDATE batches SET lease_owner = '', lease_until = 0 WHERE id = :id AND lease_owner = :me",
            soci::use(id), soci::use(me);
    });
}

std::vector<batch_work> batch_table::validating(long long now_ms, int limit) {
    return pool_.run([&](soci::session& sql) -> std::vector<batch_work> {
        batch_work w;
        long long lim = limit;
        soci::statement st = (into_work(sql.prepare << std::string("SELECT ") + work_columns +
                                                            " FROM batches WHERE status = 'validating' AND lease_until < :now"
                                                            " ORDER BY created_at, id LIMIT :lim",
                                        w),
                              soci::use(now_ms), soci::use(lim));
        return fetch_all(st, w);
    });
}

std::vector<batch_work> batch_table::runnable(long long now_s) {
    return pool_.run([&](soci::session& sql) -> std::vector<batch_work> {
        batch_work w;
        soci::statement st = (into_work(sql.prepare << std::string("SELECT ") + work_columns +
                                                            " FROM batches WHERE status = 'in_progress' AND expires_at > :now"
                                                            " ORDER BY owner, created_at, id",
                                        w),
                              soci::use(now_s));
        return fetch_all(st, w);
    });
}

std::vector<batch_work> batch_table::finalize_candidates(long long now_s, long long now_ms) {
    return pool_.run([&](soci::session& sql) -> std::vector<batch_work> {
        batch_work w;
        // in_progress with nothing left to run, or past its window; validating past its window;
        // cancelling; a finalizing batch whose finalizer died (lease expired).
        soci::statement st =
            (into_work(sql.prepare << std::string("SELECT ") + work_columns +
                                           " FROM batches b WHERE lease_until < :nowms AND (status = 'cancelling'"
                                           " OR status = 'finalizing' OR (status = 'validating' AND expires_at <= :now0)"
                                           " OR (status = 'in_progress' AND (expires_at <= :now OR NOT EXISTS"
                                           " (SELECT 1 FROM batch_requests r WHERE r.batch_id = b.id AND r.state IN ('pending', 'running')))))"
                                           " ORDER BY created_at, id",
                       w),
             soci::use(now_ms), soci::use(now_s), soci::use(now_s));
        return fetch_all(st, w);
    });
}

std::vector<std::string> batch_table::cancelling() {
    return pool_.run([&](soci::session& sql) -> std::vector<std::string> {
        std::string id;
        soci::statement st = (sql.prepare << "SELECT id FROM batches WHERE status = 'cancelling'", soci::into(id));
        return fetch_all(st, id);
    });
}

bool batch_table::activate(const std::string& id, const std::string& me, const std::string& model, long long total,
                           long long now_s) {
    return pool_.run([&](soci::session& sql) -> bool {
        return changed_one((sql.prepare << "UPDATE batches SET status = CASE WHEN status = 'validating' THEN 'in_progress'"
                                           " ELSE status END, in_progress_at = :t, total = :n, model = :m, lease_owner = '',"
                                           " lease_until = 0 WHERE id = :b AND lease_owner = :me"
                                           " AND status IN ('validating', 'cancelling')",
                           soci::use(now_s), soci::use(total), soci::use(model), soci::use(id), soci::use(me)));
    });
}

namespace {

// Any status in `from` -> failed with errors.data, under the lease of `me`.
bool fail(aq::sql::pool& pool, const std::string& id, const std::string& me, const std::string& errors_json,
          long long now_s, const char* from) {
    return pool.run([&](soci::session& sql) {
        return changed_one((sql.prepare << std::string("UPDATE batches SET status = 'failed', failed_at = :t,"
                                                       " ended_at = :t2, errors = :e, lease_owner = '', lease_until = 0"
                                                       " WHERE id = :id AND lease_owner = :me AND status IN ") + from,
                            soci::use(now_s), soci::use(now_s), soci::use(errors_json), soci::use(id), soci::use(me)));
    });
}

}  // namespace

bool batch_table::fail_validation(const std::string& id, const std::string& me, const std::string& errors_json,
                                  long long now_s) {
    // A cancel that arrived during validation still ends the batch as failed: its input was bad.
    return fail(pool_, id, me, errors_json, now_s, "('validating', 'cancelling')");
}

bool batch_table::fail_finalization(const std::string& id, const std::string& me, const std::string& errors_json,
                                    long long now_s) {
    return fail(pool_, id, me, errors_json, now_s, "('in_progress', 'finalizing', 'cancelling')");
}

bool batch_table::mark_finalizing(const std::string& id, const std::string& me, long long now_s) {
    return pool_.run([&](soci::session& sql) -> bool {
        // A batch cancelled meanwhile stays cancelling (finish turns it into cancelled).
        return changed_one((sql.prepare << "UPDATE batches SET finalizing_at = CASE WHEN status = 'in_progress' THEN :t"
                                           " ELSE finalizing_at END, status = CASE WHEN status = 'in_progress'"
                                           " THEN 'finalizing' ELSE status END WHERE id = :id AND lease_owner = :me"
                                           " AND status IN ('in_progress', 'cancelling')",
                           soci::use(now_s), soci::use(id), soci::use(me)));
    });
}

bool batch_table::finish(const std::string& id, const std::string& me, const std::string& output_file_id,
                         const std::string& error_file_id, const std::string& status, long long now_s) {
    return pool_.run([&](soci::session& sql) -> bool {
        const char* const fenced = " lease_owner = '', lease_until = 0 WHERE id = :id AND lease_owner = :me"
                                   " AND status IN ('in_progress', 'validating', 'finalizing', 'cancelling')";
        if (status == "completed") {
            return changed_one((sql.prepare << std::string("UPDATE batches SET output_file_id = :o, error_file_id = :e,"
                                                           " status = CASE WHEN status = 'cancelling' THEN 'cancelled'"
                                                           " ELSE 'completed' END,"
                                                           " completed_at = CASE WHEN status = 'cancelling' THEN 0 ELSE :t END,"
                                                           " cancelled_at = CASE WHEN status = 'cancelling' THEN :t2 ELSE 0 END,"
                                                           " ended_at = :t3,") + fenced,
                               soci::use(output_file_id), soci::use(error_file_id), soci::use(now_s), soci::use(now_s),
                               soci::use(now_s), soci::use(id), soci::use(me)));
        }
        std::string at = status == "expired" ? "expired_at" : "cancelled_at";
        return changed_one((sql.prepare << "UPDATE batches SET output_file_id = :o, error_file_id = :e, status = :s, " + at +
                                               " = :t, ended_at = :t2," + fenced,
                           soci::use(output_file_id), soci::use(error_file_id), soci::use(status), soci::use(now_s),
                           soci::use(now_s), soci::use(id), soci::use(me)));
    });
}

std::vector<std::string> batch_table::ended_with_lines(long long cutoff_s, int limit) {
    return pool_.run([&](soci::session& sql) -> std::vector<std::string> {
        std::string id;
        long long lim = limit;
        soci::statement st = (sql.prepare << "SELECT id FROM batches WHERE lines_purged = 0 AND ended_at > 0"
                                              " AND ended_at <= :cut ORDER BY ended_at, id LIMIT :lim",
                              soci::into(id), soci::use(cutoff_s), soci::use(lim));
        return fetch_all(st, id);
    });
}

void batch_table::mark_lines_purged(const std::string& id) {
    return pool_.run([&](soci::session& sql) {
        sql << "UPDATE batches SET lines_purged = 1 WHERE id = :id AND ended_at > 0", soci::use(id);
    });
}

long long batch_table::purge_ended(long long cutoff_s, int limit) {
    return pool_.run([&](soci::session& sql) -> long long {
        long long lim = limit;
        // A subquery with LIMIT, because SQLite's DELETE has no LIMIT of its own (by default).
        soci::statement st = (sql.prepare << "DELETE FROM batches WHERE id IN (SELECT id FROM batches"
                                              " WHERE lines_purged = 1 AND ended_at > 0 AND ended_at <= :cut"
                                              " ORDER BY ended_at, id LIMIT :lim)",
                              soci::use(cutoff_s), soci::use(lim));
        st.execute(true);
        return st.get_affected_rows();
    });
}

}  // namespace batches
