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

std::vector<claimed_line> line_queue::claim(const batch_work& b, int n, const std::string& me, long long claim_seq,
                                            long long now_ms, long long until_ms) {
    return pool_.run([&](soci::session& sql) -> std::vector<claimed_line> {
        aq::sql::write_transaction tx(sql, pool_.kind());
        // Two picks, each a CTE joined once and ending with sql::dialect's skip_locked() (no two
        // hosts take the same line on PostgreSQL; on SQLite BEGIN IMMEDIATE already admits one
        // writer): as `line_no IN (subquery)` PostgreSQL may rescan the subquery per updated row
        // and, after the first updates, pick further lines.
        // Each pick reads one equality range of batch_requests_queue (batch_id, state, line_no,
        // next_attempt_at) in line order. One pick with `(state = 'pending' ...) OR (state =
        // 'running' ...)` walked the primary key instead, through every line already done, and
        // on SQLite a line's `state` comes after its body, in overflow pages: a claim late in a
        // 200 MiB batch read most of the batch while holding the write lock.
        const std::string head = "WITH picked AS (SELECT line_no FROM batch_requests WHERE batch_id = :b1 AND ";
        const std::string tail = std::string(" AND EXISTS (SELECT 1 FROM batches WHERE id = :b2 AND status = 'in_progress')"
                                             " ORDER BY line_no LIMIT :lim") +
                                 std::string(aq::sql::dialect(pool_.kind()).skip_locked()) +
                                 ") UPDATE batch_requests AS r SET state = 'running', lease_owner = :me, lease_until = :u,"
                                 " claim_seq = :seq, attempts = r.attempts + 1 FROM picked"
                                 " WHERE r.batch_id = :b AND r.line_no = picked.line_no";
        // First the lines whose claim expired: another host (or this process before a restart)
        // took them and stopped renewing; they are the oldest work. A running line of `me` is
        // never taken again, even with its lease expired (the database was out of reach longer
        // than the heartbeat could bridge): this process still has it in flight or its reply
        // waiting to be recorded.
        long long lim = n;
        soci::statement expired =
            (sql.prepare << head + "state = 'running' AND lease_until < :n AND lease_owner <> :me1" + tail,
             soci::use(b.id), soci::use(now_ms), soci::use(me), soci::use(b.id), soci::use(lim), soci::use(me),
             soci::use(until_ms), soci::use(claim_seq), soci::use(b.id));
        expired.execute(true);
        lim -= std::min<long long>(lim, expired.get_affected_rows());
        if (lim > 0) {
            sql << head + "state = 'pending' AND next_attempt_at <= :n" + tail, soci::use(b.id), soci::use(now_ms),
                soci::use(b.id), soci::use(lim), soci::use(me), soci::use(until_ms), soci::use(claim_seq),
                soci::use(b.id);
        }
        std::vector<claimed_line> out;
        claimed_line l;
        l.batch_id = b.id;
        l.endpoint = b.endpoint;
        l.expires_at = b.expires_at;
        l.claim_seq = claim_seq;
        soci::statement st = (sql.prepare << "SELECT line_no, custom_id, model, body, attempts FROM batch_requests"
                                              " WHERE batch_id = :b AND lease_owner = :me AND claim_seq = :seq"
                                              " AND state = 'running' ORDER BY line_no",
                              soci::into(l.line_no), soci::into(l.custom_id), soci::into(l.model), soci::into(l.body),
                              soci::into(l.attempts), soci::use(b.id), soci::use(me), soci::use(claim_seq));
        st.execute();
        while (st.fetch()) out.push_back(l);
        tx.commit();
        return out;
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

std::size_t line_queue::record(const std::string& me, std::span<const line_outcome> outcomes) {
    if (outcomes.empty()) return 0;
    return pool_.run([&](soci::session& sql) -> std::size_t {
        aq::sql::write_transaction tx(sql, pool_.kind());
        // Prepared once per group, bound to these variables: each execute() only changes their
        // values (one round trip per line on PostgreSQL).
        std::string batch_id, req_id, request_id, response_body, error_code, error_message;
        long long line_no = 0, claim_seq = 0, next_ms = 0;
        int status_code = 0;
        usage_counts u;
        soci::statement done =
            (sql.prepare << "UPDATE batch_requests SET state = 'done', lease_owner = '', lease_until = 0,"
                             " req_id = :rid, status_code = :sc, request_id = :reqid, response_body = :body,"
                             " error_code = :ec, error_message = :em, input_tokens = :it, output_tokens = :ot,"
                             " total_tokens = :tt, cached_tokens = :ct, reasoning_tokens = :rt"
                             " WHERE batch_id = :b AND line_no = :n AND state = 'running' AND lease_owner = :me"
                             " AND claim_seq = :seq",
             soci::use(req_id), soci::use(status_code), soci::use(request_id), soci::use(response_body),
             soci::use(error_code), soci::use(error_message), soci::use(u.input_tokens), soci::use(u.output_tokens),
             soci::use(u.total_tokens), soci::use(u.cached_tokens), soci::use(u.reasoning_tokens), soci::use(batch_id),
             soci::use(line_no), soci::use(me), soci::use(claim_seq));
        soci::statement retry =
            (sql.prepare << "UPDATE batch_requests SET state = 'pending', lease_owner = '', lease_until = 0,"
                             " next_attempt_at = :next, error_message = :em"
                             " WHERE batch_id = :b AND line_no = :n AND state = 'running' AND lease_owner = :me"
                             " AND claim_seq = :seq",
             soci::use(next_ms), soci::use(error_message), soci::use(batch_id), soci::use(line_no), soci::use(me),
             soci::use(claim_seq));

        struct delta {
            long long completed = 0, failed = 0;
            usage_counts usage;
        };
        std::map<std::string, delta> deltas;
        std::size_t dropped = 0;
        for (const line_outcome& o : outcomes) {
            batch_id = o.line->batch_id;
            line_no = o.line->line_no;
            claim_seq = o.line->claim_seq;
            soci::statement& st = o.retry ? retry : done;
            if (o.retry) {
                next_ms = o.next_ms;
                error_message = o.last_error;
            } else {
                const result_row& r = o.result;
                req_id = r.req_id;
                status_code = r.status_code;
                request_id = r.request_id;
                response_body = r.response_body;
                error_code = r.error_code;
                error_message = r.error_message;
                u = o.usage;
            }
            st.execute(true);
            if (st.get_affected_rows() != 1) {
                ++dropped;  // another host owns the line now
                continue;
            }
            if (o.retry) continue;
            delta& d = deltas[batch_id];
            (o.success ? d.completed : d.failed) += 1;
            d.usage += o.usage;
        }
        for (const auto& [id, d] : deltas) {
            sql << "UPDATE batches SET completed = completed + :c, failed = failed + :f,"
                    " input_tokens = input_tokens + :it, output_tokens = output_tokens + :ot,"
                    " total_tokens = total_tokens + :tt, cached_tokens = cached_tokens + :ct,"
                    " reasoning_tokens = reasoning_tokens + :rt WHERE id = :b",
                soci::use(d.completed), soci::use(d.failed), soci::use(d.usage.input_tokens),
                soci::use(d.usage.output_tokens), soci::use(d.usage.total_tokens), soci::use(d.usage.cached_tokens),
                soci::use(d.usage.reasoning_tokens), soci::use(id);
        }
        tx.commit();
        return dropped;
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
