#include "line_queue.hpp"

#include "lease_fence.hpp"

#include "sql/dialect.hpp"
#include "sql/transaction.hpp"

#include <aqueduct/plugin.hpp>

#include <soci/soci.h>

#include <map>

namespace batches {

namespace {

// Rows per transaction when closing or dropping lines: each transaction stays in the low
// milliseconds, so on SQLite nothing waits long behind the single write lock.
constexpr long long slice_rows = 1000;

}  // namespace

bool line_queue::stage(const std::string& batch_id, const std::string& me, const std::vector<line_row>& lines) {
    return pool_.run([&](soci::session& sql) -> bool {
        aq::sql::write_transaction tx(sql, pool_.kind());
        if (!holds_lease(sql, batch_id, me)) return false;
        if (!lines.empty()) {
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
        tx.commit();
        return true;
    });
}

namespace {

// Deletes up to slice_rows lines of a batch; returns how many.
long long drop_slice(soci::session& sql, const std::string& batch_id) {
    // A subquery with LIMIT, because SQLite's DELETE has no LIMIT of its own (by default).
    soci::statement st = (sql.prepare << "DELETE FROM batch_requests WHERE batch_id = :b AND line_no IN"
                                         " (SELECT line_no FROM batch_requests WHERE batch_id = :b2"
                                         " ORDER BY line_no LIMIT :n)",
                          soci::use(batch_id), soci::use(batch_id), soci::use(slice_rows));
    st.execute(true);
    return st.get_affected_rows();
}

}  // namespace

bool line_queue::unstage(const std::string& batch_id, const std::string& me) {
    return pool_.run([&](soci::session& sql) -> bool {
        for (;;) {
            aq::sql::write_transaction tx(sql, pool_.kind());
            if (!holds_lease(sql, batch_id, me)) return false;
            long long n = drop_slice(sql, batch_id);
            tx.commit();
            if (n < slice_rows) return true;
        }
    });
}

void line_queue::drop_all(const std::string& batch_id) {
    return pool_.run([&](soci::session& sql) {
        while (drop_slice(sql, batch_id) == slice_rows) {
        }
    });
}

namespace {

// The claim's three statements, prepared once per session and kept with it
// (sql::session_lease::kept): parsing them for every claim was a tenth of the runner's CPU at
// 10,000 lines/s (perf, batches_bench). Bound to these members once.
//
// Two picks, each a CTE joined once and ending with sql::dialect's skip_locked() (no two hosts
// take the same line on PostgreSQL; on SQLite BEGIN IMMEDIATE already admits one writer): as
// `line_no IN (subquery)` PostgreSQL may rescan the subquery per updated row and, after the
// first updates, pick further lines. Each pick reads one equality range of
// batch_requests_queue (batch_id, state, line_no, next_attempt_at) in line order. One pick with
// `(state = 'pending' ...) OR (state = 'running' ...)` walked the primary key instead, through
// every line already done, and on SQLite a line's `state` comes after its body, in overflow
// pages: a claim late in a 200 MiB batch read most of the batch while holding the write lock.
struct kept_claim {
    std::string batch_id, me;
    long long now = 0, until = 0, seq = 0, lim = 0;
    claimed_line line;
    soci::statement expired, pending, read;

    static std::string pick(aq::sql::backend kind, const char* which) {
        return std::string("WITH picked AS (SELECT line_no FROM batch_requests WHERE batch_id = :b1 AND ") + which +
               " AND EXISTS (SELECT 1 FROM batches WHERE id = :b2 AND status = 'in_progress')"
               " ORDER BY line_no LIMIT :lim" +
               std::string(aq::sql::dialect(kind).skip_locked()) +
               ") UPDATE batch_requests AS r SET state = 'running', lease_owner = :me, lease_until = :u,"
               " claim_seq = :seq, attempts = r.attempts + 1 FROM picked"
               " WHERE r.batch_id = :b AND r.line_no = picked.line_no";
    }

    kept_claim(soci::session& sql, aq::sql::backend kind)
        // First the lines whose claim expired: another host (or this process before a restart)
        // took them and stopped renewing; they are the oldest work. A running line of `me` is
        // never taken again, even with its lease expired (the database was out of reach longer
        // than the heartbeat could bridge): this process still has it in flight or its reply
        // waiting to be recorded.
        : expired((sql.prepare << pick(kind, "state = 'running' AND lease_until < :n AND lease_owner <> :me1"),
                   soci::use(batch_id), soci::use(now), soci::use(me), soci::use(batch_id), soci::use(lim),
                   soci::use(me), soci::use(until), soci::use(seq), soci::use(batch_id))),
          pending((sql.prepare << pick(kind, "state = 'pending' AND next_attempt_at <= :n"), soci::use(batch_id),
                   soci::use(now), soci::use(batch_id), soci::use(lim), soci::use(me), soci::use(until), soci::use(seq),
                   soci::use(batch_id))),
          read((sql.prepare << "SELECT line_no, custom_id, model, body, attempts FROM batch_requests"
                               " WHERE batch_id = :b AND lease_owner = :me AND claim_seq = :seq"
                               " AND state = 'running' ORDER BY line_no",
                soci::into(line.line_no), soci::into(line.custom_id), soci::into(line.model), soci::into(line.body),
                soci::into(line.attempts), soci::use(batch_id), soci::use(me), soci::use(seq))) {}
};
constexpr int kept_claim_tag = 0;

}  // namespace

std::vector<claimed_line> line_queue::claim(const batch_work& b, int n, const std::string& me, long long claim_seq,
                                            long long now_ms, long long until_ms) {
    aq::sql::session_lease lease = pool_.lease();
    return lease.run([&](soci::session& sql) -> std::vector<claimed_line> {
        auto& q = lease.kept<kept_claim>(&kept_claim_tag,
                                         [this](soci::session& s) { return std::make_unique<kept_claim>(s, pool_.kind()); });
        const aq::sql::dialect d(pool_.kind());
        try {
            aq::sql::write_transaction tx(sql, pool_.kind());
            q.batch_id = b.id;
            q.me = me;
            q.now = now_ms;
            q.until = until_ms;
            q.seq = claim_seq;
            q.lim = n;
            q.expired.execute(true);
            q.lim -= std::min<long long>(q.lim, q.expired.get_affected_rows());
            d.end_pass(q.expired);
            if (q.lim > 0) {
                q.pending.execute(true);
                d.end_pass(q.pending);
            }
            std::vector<claimed_line> out;
            q.read.execute();
            while (q.read.fetch()) {
                claimed_line& l = out.emplace_back(q.line);
                l.batch_id = b.id;
                l.endpoint = b.endpoint;
                l.expires_at = b.expires_at;
                l.claim_seq = claim_seq;
            }
            d.end_pass(q.read);
            tx.commit();
            return out;
        } catch (...) {
            lease.forget(&kept_claim_tag);  // a statement that failed halfway is not reused
            throw;
        }
    });
}

long long line_queue::renew(const std::string& me, long long until_ms) {
    return pool_.run([&](soci::session& sql) -> long long {
        soci::statement st = (sql.prepare << "UPDATE batch_requests SET lease_until = :u WHERE lease_owner = :me"
                                              " AND state = 'running'",
                              soci::use(until_ms), soci::use(me));
        st.execute(true);
        return st.get_affected_rows();
    });
}

namespace {

// Recording's two per-line statements, kept with the session like the claim's.
struct kept_record {
    std::string batch_id, me, req_id, request_id, response_body, error_code, error_message;
    long long line_no = 0, claim_seq = 0, next_ms = 0, refund = 0;
    int status_code = 0;
    usage_counts u;
    soci::statement done, retry;

    explicit kept_record(soci::session& sql)
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
                                " next_attempt_at = :next, error_message = :em, attempts = attempts - :refund"
                                " WHERE batch_id = :b AND line_no = :n AND state = 'running' AND lease_owner = :me"
                                " AND claim_seq = :seq",
                 soci::use(next_ms), soci::use(error_message), soci::use(refund), soci::use(batch_id),
                 soci::use(line_no), soci::use(me), soci::use(claim_seq))) {}
};
constexpr int kept_record_tag = 0;

}  // namespace

std::size_t line_queue::record(const std::string& me, std::span<const line_outcome> outcomes) {
    if (outcomes.empty()) return 0;
    aq::sql::session_lease lease = pool_.lease();
    return lease.run([&](soci::session& sql) -> std::size_t {
        auto& q = lease.kept<kept_record>(&kept_record_tag, [](soci::session& s) { return std::make_unique<kept_record>(s); });
        const aq::sql::dialect d(pool_.kind());
        try {
            aq::sql::write_transaction tx(sql, pool_.kind());
            q.me = me;
            struct delta {
                long long completed = 0, failed = 0;
                usage_counts usage;
            };
            std::map<std::string, delta> deltas;
            std::size_t dropped = 0;
            for (const line_outcome& o : outcomes) {
                q.batch_id = o.line->batch_id;
                q.line_no = o.line->line_no;
                q.claim_seq = o.line->claim_seq;
                soci::statement& st = o.retry ? q.retry : q.done;
                if (o.retry) {
                    q.next_ms = o.next_ms;
                    q.error_message = o.last_error;
                    q.refund = o.unsent ? 1 : 0;
                } else {
                    const result_row& r = o.result;
                    q.req_id = r.req_id;
                    q.status_code = r.status_code;
                    q.request_id = r.request_id;
                    q.response_body = r.response_body;
                    q.error_code = r.error_code;
                    q.error_message = r.error_message;
                    q.u = o.usage;
                }
                st.execute(true);
                long long affected = st.get_affected_rows();
                d.end_pass(st);
                if (affected != 1) {
                    ++dropped;  // another host owns the line now
                    continue;
                }
                if (o.retry) continue;
                delta& dl = deltas[q.batch_id];
                (o.success ? dl.completed : dl.failed) += 1;
                dl.usage += o.usage;
            }
            // A response body can be large: not kept in the statement's buffer until the next group.
            q.response_body = std::string();
            for (const auto& [id, dl] : deltas) {
                sql << "UPDATE batches SET completed = completed + :c, failed = failed + :f,"
                        " input_tokens = input_tokens + :it, output_tokens = output_tokens + :ot,"
                        " total_tokens = total_tokens + :tt, cached_tokens = cached_tokens + :ct,"
                        " reasoning_tokens = reasoning_tokens + :rt WHERE id = :b",
                    soci::use(dl.completed), soci::use(dl.failed), soci::use(dl.usage.input_tokens),
                    soci::use(dl.usage.output_tokens), soci::use(dl.usage.total_tokens),
                    soci::use(dl.usage.cached_tokens), soci::use(dl.usage.reasoning_tokens), soci::use(id);
            }
            tx.commit();
            return dropped;
        } catch (...) {
            lease.forget(&kept_record_tag);  // a statement that failed halfway is not reused
            throw;
        }
    });
}

line_queue::line_counts line_queue::count(const std::string& batch_id, long long now_ms) {
    return pool_.run([&](soci::session& sql) {
        line_counts c;
        sql << "SELECT COUNT(*) FROM batch_requests WHERE batch_id = :b AND state IN ('pending', 'running')", soci::into(c.not_done),
            soci::use(batch_id);
        sql << "SELECT COUNT(*) FROM batch_requests WHERE batch_id = :b AND state = 'running' AND lease_until >= :now",
            soci::into(c.live_running), soci::use(batch_id), soci::use(now_ms);
        return c;
    });
}

bool line_queue::close_unrun(const std::string& batch_id, const std::string& me, const unrun_reason& why,
                             long long now_ms) {
    const std::string code = why.code, message = why.message;
    return pool_.run([&](soci::session& sql) -> bool {
        for (;;) {
            aq::sql::write_transaction tx(sql, pool_.kind());
            if (!holds_lease(sql, batch_id, me)) return false;
            std::vector<long long> nos;
            {
                long long no = 0;
                // Two ranges of batch_requests_queue merged in line order, so no slice walks the
                // lines already done (an OR of the two made SQLite walk the primary key).
                soci::statement st = (sql.prepare << "SELECT line_no FROM batch_requests WHERE batch_id = :b"
                                                      " AND state = 'pending' UNION ALL"
                                                      " SELECT line_no FROM batch_requests WHERE batch_id = :b2"
                                                      " AND state = 'running' AND lease_until < :now"
                                                      " ORDER BY line_no LIMIT :n",
                                      soci::into(no), soci::use(batch_id), soci::use(batch_id), soci::use(now_ms),
                                      soci::use(slice_rows));
                st.execute();
                while (st.fetch()) nos.push_back(no);
            }
            // Each closed line gets its own batch_req id, so the lines are updated one by one.
            std::string req_id;
            long long no = 0;
            soci::statement up = (sql.prepare << "UPDATE batch_requests SET state = 'done', lease_owner = '',"
                                                  " lease_until = 0, req_id = :rid, status_code = 0, request_id = '',"
                                                  " response_body = '', error_code = :ec, error_message = :em"
                                                  " WHERE batch_id = :b AND line_no = :n",
                                  soci::use(req_id), soci::use(code), soci::use(message), soci::use(batch_id), soci::use(no));
            for (long long n : nos) {
                no = n;
                req_id = aq::random_id("batch_req_");
                up.execute(true);
            }
            long long failed = static_cast<long long>(nos.size());
            sql << "UPDATE batches SET failed = failed + :f WHERE id = :b", soci::use(failed), soci::use(batch_id);
            tx.commit();
            if (failed < slice_rows) return true;
        }
    });
}

std::vector<result_row> line_queue::results_page(const std::string& batch_id, long long after_line, int limit,
                                                 bool success) {
    return pool_.run([&](soci::session& sql) -> std::vector<result_row> {
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
    });
}

}  // namespace batches
