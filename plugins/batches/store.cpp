#include "store.hpp"

#include "sql/dialect.hpp"
#include "sql/migrations.hpp"
#include "sql/transaction.hpp"

#include <aqueduct/plugin.hpp>

namespace batches {

namespace {

const char* const batch_columns =
    "id, owner, endpoint, model, input_file_id, completion_window, status, errors, output_file_id, "
    "error_file_id, metadata, created_at, in_progress_at, expires_at, finalizing_at, completed_at, failed_at, "
    "expired_at, cancelling_at, cancelled_at, total, completed, failed, input_tokens, output_tokens, "
    "total_tokens, cached_tokens, reasoning_tokens, output_expires_after";

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

const std::vector<std::string> schema_v1 = {
        "CREATE TABLE batches ("
        " id TEXT PRIMARY KEY, owner TEXT NOT NULL, endpoint TEXT NOT NULL, model TEXT NOT NULL DEFAULT '',"
        " input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL, status TEXT NOT NULL,"
        " errors TEXT NOT NULL DEFAULT '', output_file_id TEXT NOT NULL DEFAULT '',"
        " error_file_id TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '',"
        " created_at BIGINT NOT NULL, in_progress_at BIGINT NOT NULL DEFAULT 0, expires_at BIGINT NOT NULL,"
        " finalizing_at BIGINT NOT NULL DEFAULT 0, completed_at BIGINT NOT NULL DEFAULT 0,"
        " failed_at BIGINT NOT NULL DEFAULT 0, expired_at BIGINT NOT NULL DEFAULT 0,"
        " cancelling_at BIGINT NOT NULL DEFAULT 0, cancelled_at BIGINT NOT NULL DEFAULT 0,"
        " total BIGINT NOT NULL DEFAULT 0, completed BIGINT NOT NULL DEFAULT 0, failed BIGINT NOT NULL DEFAULT 0,"
        " input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,"
        " total_tokens BIGINT NOT NULL DEFAULT 0, cached_tokens BIGINT NOT NULL DEFAULT 0,"
        " reasoning_tokens BIGINT NOT NULL DEFAULT 0, output_expires_after BIGINT NOT NULL DEFAULT 0,"
        " lease_owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0)",
        "CREATE INDEX batches_owner_created ON batches (owner, created_at, id)",
        "CREATE INDEX batches_status ON batches (status)",
        "CREATE TABLE batch_requests ("
        " batch_id TEXT NOT NULL, line_no BIGINT NOT NULL, custom_id TEXT NOT NULL, model TEXT NOT NULL,"
        " body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts BIGINT NOT NULL DEFAULT 0,"
        " next_attempt_at BIGINT NOT NULL DEFAULT 0, lease_owner TEXT NOT NULL DEFAULT '',"
        " lease_until BIGINT NOT NULL DEFAULT 0, claim_seq BIGINT NOT NULL DEFAULT 0,"
        " req_id TEXT NOT NULL DEFAULT '', status_code INTEGER NOT NULL DEFAULT 0,"
        " request_id TEXT NOT NULL DEFAULT '', response_body TEXT NOT NULL DEFAULT '',"
        " error_code TEXT NOT NULL DEFAULT '', error_message TEXT NOT NULL DEFAULT '',"
        " input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,"
        " total_tokens BIGINT NOT NULL DEFAULT 0, cached_tokens BIGINT NOT NULL DEFAULT 0,"
        " reasoning_tokens BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (batch_id, line_no))",
        "CREATE INDEX batch_requests_state ON batch_requests (batch_id, state, next_attempt_at)",
        "CREATE INDEX batch_requests_lease ON batch_requests (lease_owner, state)",
};

}  // namespace

void store::migrate() {
    // The same SQL serves both backends: TEXT and BIGINT mean the same to SQLite and PostgreSQL.
    static const std::vector<aq::sql::migration> migrations = {{1, schema_v1, schema_v1}};
    auto lease = pool_.lease();
    aq::sql::migrate(*lease, pool_.kind(), "batches", migrations);
}

void store::insert_batch(const batch_row& b) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    sql << "INSERT INTO batches (id, owner, endpoint, model, input_file_id, completion_window, status, metadata,"
           " created_at, expires_at, output_expires_after) VALUES (:id, :owner, :endpoint, :model, :input,"
           " :window, :status, :metadata, :created, :expires, :oea)",
        soci::use(b.id), soci::use(b.owner), soci::use(b.endpoint), soci::use(b.model), soci::use(b.input_file_id),
        soci::use(b.completion_window), soci::use(b.status), soci::use(b.metadata), soci::use(b.created_at),
        soci::use(b.expires_at), soci::use(b.output_expires_after);
}

std::optional<batch_row> store::get_batch(const std::string& owner, const std::string& id) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    batch_row b;
    into_batch(sql << (std::string("SELECT ") + batch_columns + " FROM batches WHERE id = :id AND owner = :owner"), b),
        soci::use(id), soci::use(owner);
    if (!sql.got_data()) return std::nullopt;
    return b;
}

std::vector<batch_row> store::list_batches(const std::string& owner, const std::string& after, int limit) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    std::vector<batch_row> out;
    batch_row b;
    long long lim = limit;
    std::string q = std::string("SELECT ") + batch_columns + " FROM batches WHERE owner = :owner";
    long long after_created = 0;
    if (!after.empty()) {
        sql << "SELECT created_at FROM batches WHERE id = :id AND owner = :owner", soci::into(after_created),
            soci::use(after), soci::use(owner);
        if (!sql.got_data()) return out;  // an unknown cursor: nothing after it
        q += " AND (created_at < :c OR (created_at = :c2 AND id < :a))";
    }
    q += " ORDER BY created_at DESC, id DESC LIMIT :lim";
    soci::statement st = after.empty()
        ? (into_batch(sql.prepare << q, b), soci::use(owner), soci::use(lim))
        : (into_batch(sql.prepare << q, b), soci::use(owner), soci::use(after_created), soci::use(after_created),
           soci::use(after), soci::use(lim));
    st.execute();
    while (st.fetch()) out.push_back(b);
    return out;
}

long long store::count_active(const std::string& owner) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    long long n = 0;
    sql << "SELECT COUNT(*) FROM batches WHERE owner = :o AND status IN"
           " ('validating', 'in_progress', 'finalizing', 'cancelling')",
        soci::into(n), soci::use(owner);
    return n;
}

std::optional<batch_row> store::cancel(const std::string& owner, const std::string& id, long long now) {
    {
        auto lease = pool_.lease();
    soci::session& sql = *lease;
        sql << "UPDATE batches SET status = 'cancelling', cancelling_at = :t WHERE id = :id AND owner = :o"
               " AND status IN ('validating', 'in_progress', 'finalizing')",
            soci::use(now), soci::use(id), soci::use(owner);
    }
    return get_batch(owner, id);
}

bool store::lease_batch(const std::string& id, const std::string& me, long long now_ms, long long until_ms) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    soci::statement st = (sql.prepare << "UPDATE batches SET lease_owner = :me, lease_until = :u WHERE id = :id"
                                         " AND (lease_owner = '' OR lease_owner = :me2 OR lease_until < :now)",
                          soci::use(me), soci::use(until_ms), soci::use(id), soci::use(me), soci::use(now_ms));
    st.execute(true);
    return st.get_affected_rows() == 1;
}

void store::release_batch(const std::string& id, const std::string& me) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    sql << "UPDATE batches SET lease_owner = '', lease_until = 0 WHERE id = :id AND lease_owner = :me",
        soci::use(id), soci::use(me);
}

namespace {
std::vector<batch_work> fetch_work(soci::session& sql, soci::statement& st, batch_work& w) {
    std::vector<batch_work> out;
    (void)sql;
    st.execute();
    while (st.fetch()) out.push_back(w);
    return out;
}
}  // namespace

std::vector<batch_work> store::validating(long long now_ms, int limit) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    batch_work w;
    long long lim = limit;
    soci::statement st = (sql.prepare << "SELECT id, owner, status, endpoint, model, expires_at, input_file_id FROM batches"
                                         " WHERE status = 'validating' AND lease_until < :now"
                                         " ORDER BY created_at, id LIMIT :lim",
                          soci::into(w.id), soci::into(w.owner), soci::into(w.status), soci::into(w.endpoint),
                          soci::into(w.model), soci::into(w.expires_at), soci::into(w.input_file_id), soci::use(now_ms), soci::use(lim));
    return fetch_work(sql, st, w);
}

std::vector<batch_work> store::runnable(long long now_s) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    batch_work w;
    soci::statement st = (sql.prepare << "SELECT id, owner, status, endpoint, model, expires_at, input_file_id FROM batches"
                                         " WHERE status = 'in_progress' AND expires_at > :now"
                                         " ORDER BY owner, created_at, id",
                          soci::into(w.id), soci::into(w.owner), soci::into(w.status), soci::into(w.endpoint),
                          soci::into(w.model), soci::into(w.expires_at), soci::into(w.input_file_id), soci::use(now_s));
    return fetch_work(sql, st, w);
}

std::vector<batch_work> store::finalize_candidates(long long now_s, long long now_ms) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    batch_work w;
    // in_progress with nothing left to run, or past its window; validating past its window;
    // cancelling; a finalizing batch whose finalizer died (lease expired).
    soci::statement st =
        (sql.prepare << "SELECT id, owner, status, endpoint, model, expires_at, input_file_id FROM batches b"
                        " WHERE lease_until < :nowms AND (status = 'cancelling' OR status = 'finalizing'"
                        " OR (status = 'validating' AND expires_at <= :now0)"
                        " OR (status = 'in_progress' AND (expires_at <= :now OR NOT EXISTS"
                        " (SELECT 1 FROM batch_requests r WHERE r.batch_id = b.id AND r.state <> 'done'))))"
                        " ORDER BY created_at, id",
         soci::into(w.id), soci::into(w.owner), soci::into(w.status), soci::into(w.endpoint), soci::into(w.model),
         soci::into(w.expires_at), soci::into(w.input_file_id), soci::use(now_ms), soci::use(now_s), soci::use(now_s));
    return fetch_work(sql, st, w);
}

void store::clear_lines(soci::session& sql, const std::string& batch_id) {
    sql << "DELETE FROM batch_requests WHERE batch_id = :b", soci::use(batch_id);
}

void store::insert_lines(soci::session& sql, const std::string& batch_id, const std::vector<line_row>& lines) {
    if (lines.empty()) return;
    std::vector<std::string> ids(lines.size(), batch_id), custom, models, bodies;
    std::vector<long long> nos;
    nos.reserve(lines.size());
    custom.reserve(lines.size());
    models.reserve(lines.size());
    bodies.reserve(lines.size());
    for (const auto& l : lines) {
        nos.push_back(l.line_no);
        custom.push_back(l.custom_id);
        models.push_back(l.model);
        bodies.push_back(l.body);
    }
    sql << "INSERT INTO batch_requests (batch_id, line_no, custom_id, model, body) VALUES (:b, :n, :c, :m, :body)",
        soci::use(ids), soci::use(nos), soci::use(custom), soci::use(models), soci::use(bodies);
}

void store::activate(soci::session& sql, const std::string& batch_id, const std::string& model, long long total,
                     long long now_s) {
    sql << "UPDATE batches SET status = CASE WHEN status = 'validating' THEN 'in_progress' ELSE status END,"
           " in_progress_at = :t, total = :n, model = :m, lease_owner = '', lease_until = 0 WHERE id = :b",
        soci::use(now_s), soci::use(total), soci::use(model), soci::use(batch_id);
}

void store::fail_batch(const std::string& id, const std::string& errors_json, long long now_s) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    // A cancel that arrived during validation still ends the batch as failed: its input was bad.
    sql << "UPDATE batches SET status = 'failed', failed_at = :t, errors = :e, lease_owner = '', lease_until = 0"
           " WHERE id = :id AND status IN ('validating', 'cancelling')",
        soci::use(now_s), soci::use(errors_json), soci::use(id);
}

void store::fail_finalize(const std::string& id, const std::string& errors_json, long long now_s) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    sql << "UPDATE batches SET status = 'failed', failed_at = :t, errors = :e, lease_owner = '', lease_until = 0"
           " WHERE id = :id",
        soci::use(now_s), soci::use(errors_json), soci::use(id);
}

std::vector<claimed_line> store::claim(const batch_work& b, int n, const std::string& me, long long claim_seq,
                                       long long now_ms, long long until_ms) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    long long lim = n;
    const char* runnable_line =
        "batch_id = :b1 AND ((state = 'pending' AND next_attempt_at <= :n1) OR (state = 'running' AND lease_until < :n2))";
    {
        aq::sql::write_transaction tx(sql, pool_.kind());
        // A claim as sql::dialect writes it: the materialized pick runs once (inlined, PostgreSQL
        // may rescan it per row and yield far more than n lines), with SKIP LOCKED on PostgreSQL.
        sql << std::string("WITH picked AS MATERIALIZED (SELECT line_no FROM batch_requests WHERE ") +
                   runnable_line + " ORDER BY line_no LIMIT :lim" +
                   std::string(aq::sql::dialect(pool_.kind()).skip_locked()) +
                   ") UPDATE batch_requests SET state = 'running', lease_owner = :me, lease_until = :u,"
                   " claim_seq = :seq, attempts = attempts + 1"
                   " WHERE batch_id = :b AND line_no IN (SELECT line_no FROM picked)",
            soci::use(b.id), soci::use(now_ms), soci::use(now_ms), soci::use(lim), soci::use(me), soci::use(until_ms),
            soci::use(claim_seq), soci::use(b.id);
        tx.commit();
    }
    std::vector<claimed_line> out;
    claimed_line l;
    l.batch_id = b.id;
    l.endpoint = b.endpoint;
    l.claim_seq = claim_seq;
    soci::statement st = (sql.prepare << "SELECT line_no, custom_id, model, body, attempts FROM batch_requests"
                                         " WHERE batch_id = :b AND lease_owner = :me AND claim_seq = :seq"
                                         " AND state = 'running' ORDER BY line_no",
                          soci::into(l.line_no), soci::into(l.custom_id), soci::into(l.model), soci::into(l.body),
                          soci::into(l.attempts), soci::use(b.id), soci::use(me), soci::use(claim_seq));
    st.execute();
    while (st.fetch()) out.push_back(l);
    return out;
}

void store::renew_leases(const std::string& me, long long until_ms) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    sql << "UPDATE batch_requests SET lease_until = :u WHERE lease_owner = :me AND state = 'running'",
        soci::use(until_ms), soci::use(me);
}

// The bound variables live here, so each execute() only changes their values.
struct store::recorder::statements {
    std::string me, batch_id, req_id, request_id, response_body, error_code, error_message;
    long long line_no = 0, claim_seq = 0, next_ms = 0;
    int status_code = 0;
    usage_counts u;
    soci::statement done, retry;

    explicit statements(soci::session& sql)
        : done((sql.prepare << "UPDATE batch_requests SET state = 'done', lease_owner = '', lease_until = 0,"
                               " req_id = :rid, status_code = :sc, request_id = :reqid, response_body = :body,"
                               " error_code = :ec, error_message = :em, input_tokens = :it, output_tokens = :ot,"
                               " total_tokens = :tt, cached_tokens = :ct, reasoning_tokens = :rt"
                               " WHERE batch_id = :b AND line_no = :n AND state = 'running' AND lease_owner = :me"
                               " AND claim_seq = :seq",
                soci::use(req_id), soci::use(status_code), soci::use(request_id), soci::use(response_body),
                soci::use(error_code), soci::use(error_message), soci::use(u.input_tokens), soci::use(u.output_tokens),
                soci::use(u.total_tokens), soci::use(u.cached_tokens), soci::use(u.reasoning_tokens),
                soci::use(batch_id), soci::use(line_no), soci::use(me), soci::use(claim_seq))),
          retry((sql.prepare << "UPDATE batch_requests SET state = 'pending', lease_owner = '', lease_until = 0,"
                                " next_attempt_at = :next, error_message = :em"
                                " WHERE batch_id = :b AND line_no = :n AND state = 'running' AND lease_owner = :me"
                                " AND claim_seq = :seq",
                 soci::use(next_ms), soci::use(error_message), soci::use(batch_id), soci::use(line_no), soci::use(me),
                 soci::use(claim_seq))) {}
};

store::recorder::recorder(soci::session& sql, const std::string& me) : st_(std::make_unique<statements>(sql)) {
    st_->me = me;
}

store::recorder::~recorder() = default;

bool store::recorder::result(const claimed_line& line, const result_row& r, const usage_counts& u) {
    auto& s = *st_;
    s.req_id = r.req_id;
    s.status_code = r.status_code;
    s.request_id = r.request_id;
    s.response_body = r.response_body;
    s.error_code = r.error_code;
    s.error_message = r.error_message;
    s.u = u;
    s.batch_id = line.batch_id;
    s.line_no = line.line_no;
    s.claim_seq = line.claim_seq;
    s.done.execute(true);
    return s.done.get_affected_rows() == 1;
}

bool store::recorder::retry(const claimed_line& line, long long next_ms, const std::string& last_error) {
    auto& s = *st_;
    s.next_ms = next_ms;
    s.error_message = last_error;
    s.batch_id = line.batch_id;
    s.line_no = line.line_no;
    s.claim_seq = line.claim_seq;
    s.retry.execute(true);
    return s.retry.get_affected_rows() == 1;
}

void store::add_counts(soci::session& sql, const std::string& batch_id, long long completed, long long failed,
                       const usage_counts& u) {
    sql << "UPDATE batches SET completed = completed + :c, failed = failed + :f,"
           " input_tokens = input_tokens + :it, output_tokens = output_tokens + :ot,"
           " total_tokens = total_tokens + :tt, cached_tokens = cached_tokens + :ct,"
           " reasoning_tokens = reasoning_tokens + :rt WHERE id = :b",
        soci::use(completed), soci::use(failed), soci::use(u.input_tokens), soci::use(u.output_tokens),
        soci::use(u.total_tokens), soci::use(u.cached_tokens), soci::use(u.reasoning_tokens), soci::use(batch_id);
}

store::line_counts store::count_lines(const std::string& batch_id, long long now_ms) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    line_counts c;
    sql << "SELECT COUNT(*) FROM batch_requests WHERE batch_id = :b AND state <> 'done'", soci::into(c.not_done),
        soci::use(batch_id);
    sql << "SELECT COUNT(*) FROM batch_requests WHERE batch_id = :b AND state = 'running' AND lease_until >= :now",
        soci::into(c.live_running), soci::use(batch_id), soci::use(now_ms);
    return c;
}

void store::close_unrun_lines(const std::string& batch_id, const std::string& code, const std::string& message,
                              long long now_ms) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    aq::sql::write_transaction tx(sql, pool_.kind());
    // Each closed line needs its own batch_req id: do it row by row (only unrun lines).
    std::vector<long long> nos;
    {
        long long no = 0;
        soci::statement st = (sql.prepare << "SELECT line_no FROM batch_requests WHERE batch_id = :b"
                                             " AND state <> 'done' AND NOT (state = 'running' AND lease_until >= :now)",
                              soci::into(no), soci::use(batch_id), soci::use(now_ms));
        st.execute();
        while (st.fetch()) nos.push_back(no);
    }
    std::string req_id;
    long long no = 0;
    soci::statement up = (sql.prepare << "UPDATE batch_requests SET state = 'done', lease_owner = '', lease_until = 0,"
                                         " req_id = :rid, status_code = 0, request_id = '', response_body = '',"
                                         " error_code = :ec, error_message = :em WHERE batch_id = :b AND line_no = :n",
                          soci::use(req_id), soci::use(code), soci::use(message), soci::use(batch_id), soci::use(no));
    for (long long n : nos) {
        no = n;
        req_id = aq::random_id("batch_req_");
        up.execute(true);
    }
    long long failed = static_cast<long long>(nos.size());
    sql << "UPDATE batches SET failed = failed + :f WHERE id = :b", soci::use(failed), soci::use(batch_id);
    tx.commit();
}

void store::mark_finalizing(const std::string& id, long long now_s) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    sql << "UPDATE batches SET status = 'finalizing', finalizing_at = :t WHERE id = :id AND status = 'in_progress'",
        soci::use(now_s), soci::use(id);
}

std::vector<result_row> store::results_page(const std::string& batch_id, long long after_line, int limit, bool success) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    std::vector<result_row> out;
    result_row r;
    long long lim = limit;
    std::string cond = success ? " AND status_code BETWEEN 200 AND 299" : " AND NOT (status_code BETWEEN 200 AND 299)";
    soci::statement st =
        (sql.prepare << "SELECT line_no, custom_id, req_id, status_code, request_id, response_body, error_code,"
                        " error_message FROM batch_requests WHERE batch_id = :b AND state = 'done' AND line_no > :a" +
                            cond + " ORDER BY line_no LIMIT :lim",
         soci::into(r.line_no), soci::into(r.custom_id), soci::into(r.req_id), soci::into(r.status_code),
         soci::into(r.request_id), soci::into(r.response_body), soci::into(r.error_code), soci::into(r.error_message),
         soci::use(batch_id), soci::use(after_line), soci::use(lim));
    st.execute();
    while (st.fetch()) out.push_back(r);
    return out;
}

void store::finish(const std::string& id, const std::string& output_file_id, const std::string& error_file_id,
                   const std::string& status, long long now_s) {
    auto lease = pool_.lease();
    soci::session& sql = *lease;
    if (status == "completed") {
        sql << "UPDATE batches SET output_file_id = :o, error_file_id = :e,"
               " status = CASE WHEN status = 'cancelling' THEN 'cancelled' ELSE 'completed' END,"
               " completed_at = CASE WHEN status = 'cancelling' THEN 0 ELSE :t END,"
               " cancelled_at = CASE WHEN status = 'cancelling' THEN :t2 ELSE 0 END,"
               " lease_owner = '', lease_until = 0 WHERE id = :id",
            soci::use(output_file_id), soci::use(error_file_id), soci::use(now_s), soci::use(now_s), soci::use(id);
    } else {
        std::string at = status == "expired" ? "expired_at" : "cancelled_at";
        sql << "UPDATE batches SET output_file_id = :o, error_file_id = :e, status = :s, " + at + " = :t,"
               " lease_owner = '', lease_until = 0 WHERE id = :id",
            soci::use(output_file_id), soci::use(error_file_id), soci::use(status), soci::use(now_s), soci::use(id);
    }
}

}  // namespace batches
