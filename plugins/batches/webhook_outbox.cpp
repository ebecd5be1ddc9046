#include "webhook_outbox.hpp"

#include "sql/dialect.hpp"
#include "sql/transaction.hpp"

#include <aqueduct/plugin.hpp>

#include <boost/json.hpp>

#include <soci/soci.h>

namespace batches {

namespace {

bool changed_one(soci::statement&& st) {
    st.execute(true);
    return st.get_affected_rows() == 1;
}

constexpr const char* fenced = " WHERE event_id = :e AND url = :u AND lease_owner = :me AND state = 'pending'";

}  // namespace

void webhook_outbox::enqueue(soci::session& sql, const std::vector<webhook_endpoint>& endpoints,
                             const std::string& owner, const std::string& batch_id, const std::string& status,
                             long long now_s) {
    const std::string type = "batch." + status;
    std::string event_id;  // one event, the same webhook-id at every endpoint
    std::string body;
    for (const auto& e : endpoints) {
        if (!e.wants(owner, type)) continue;
        if (event_id.empty()) {
            event_id = aq::random_id("evt_");
            body = boost::json::serialize(boost::json::object{{"id", event_id},
                                                              {"object", "event"},
                                                              {"created_at", now_s},
                                                              {"type", type},
                                                              {"data", {{"id", batch_id}}}});
        }
        sql << "INSERT INTO batch_webhooks (event_id, url, batch_id, owner, type, created_at, body)"
               " VALUES (:e, :u, :b, :o, :t, :c, :body)",
            soci::use(event_id), soci::use(e.url), soci::use(batch_id), soci::use(owner), soci::use(type),
            soci::use(now_s), soci::use(body);
    }
}

std::vector<webhook_delivery> webhook_outbox::claim(const std::string& me, int n, long long now_ms,
                                                    long long until_ms) {
    return pool_.run([&](soci::session& sql) -> std::vector<webhook_delivery> {
        // Asked every poll: a read first, so that an empty outbox never takes SQLite's write lock.
        int due = 0;
        sql << "SELECT COUNT(*) FROM (SELECT 1 FROM batch_webhooks WHERE state = 'pending' AND next_attempt_at <= :n"
               " AND lease_until < :n2 LIMIT 1) AS d",
            soci::into(due), soci::use(now_ms), soci::use(now_ms);
        if (due == 0) return {};
        aq::sql::write_transaction tx(sql, pool_.kind());
        long long lim = n;
        sql << std::string("WITH picked AS (SELECT event_id, url FROM batch_webhooks WHERE state = 'pending'"
                           " AND next_attempt_at <= :n1 AND lease_until < :n2 ORDER BY next_attempt_at LIMIT :lim") +
                   std::string(aq::sql::dialect(pool_.kind()).skip_locked()) +
                   ") UPDATE batch_webhooks AS w SET lease_owner = :me, lease_until = :u, attempts = w.attempts + 1"
                   " FROM picked WHERE w.event_id = picked.event_id AND w.url = picked.url",
            soci::use(now_ms), soci::use(now_ms), soci::use(lim), soci::use(me), soci::use(until_ms);
        std::vector<webhook_delivery> out;
        webhook_delivery d;
        soci::statement st = (sql.prepare << "SELECT event_id, url, batch_id, type, body, created_at, attempts"
                                              " FROM batch_webhooks WHERE lease_owner = :me AND lease_until = :u"
                                              " AND state = 'pending' ORDER BY created_at, event_id, url",
                              soci::into(d.event_id), soci::into(d.url), soci::into(d.batch_id), soci::into(d.type),
                              soci::into(d.body), soci::into(d.created_at), soci::into(d.attempts), soci::use(me),
                              soci::use(until_ms));
        st.execute();
        while (st.fetch()) out.push_back(d);
        tx.commit();
        return out;
    });
}

bool webhook_outbox::delivered(const webhook_delivery& d, const std::string& me, int status, long long now_ms) {
    return pool_.run([&](soci::session& sql) {
        return changed_one((sql.prepare << std::string("UPDATE batch_webhooks SET state = 'delivered', last_status = :s,"
                                                       " last_error = '', ended_at = :t, lease_owner = '', lease_until = 0") +
                                               fenced,
                            soci::use(status), soci::use(now_ms), soci::use(d.event_id), soci::use(d.url),
                            soci::use(me)));
    });
}

bool webhook_outbox::retry_at(const webhook_delivery& d, const std::string& me, int status, const std::string& error,
                              long long next_ms) {
    return pool_.run([&](soci::session& sql) {
        return changed_one((sql.prepare << std::string("UPDATE batch_webhooks SET next_attempt_at = :n, last_status = :s,"
                                                       " last_error = :err, lease_owner = '', lease_until = 0") +
                                               fenced,
                            soci::use(next_ms), soci::use(status), soci::use(error), soci::use(d.event_id),
                            soci::use(d.url), soci::use(me)));
    });
}

bool webhook_outbox::give_up(const webhook_delivery& d, const std::string& me, int status, const std::string& error,
                             long long now_ms) {
    return pool_.run([&](soci::session& sql) {
        return changed_one((sql.prepare << std::string("UPDATE batch_webhooks SET state = 'failed', last_status = :s,"
                                                       " last_error = :err, ended_at = :t, lease_owner = '',"
                                                       " lease_until = 0") +
                                               fenced,
                            soci::use(status), soci::use(error), soci::use(now_ms), soci::use(d.event_id),
                            soci::use(d.url), soci::use(me)));
    });
}

long long webhook_outbox::purge(long long cutoff_ms, int limit) {
    return pool_.run([&](soci::session& sql) -> long long {
        long long lim = limit;
        // A subquery with LIMIT, because SQLite's DELETE has no LIMIT of its own (by default).
        soci::statement st = (sql.prepare << "DELETE FROM batch_webhooks WHERE event_id IN (SELECT event_id FROM"
                                              " batch_webhooks WHERE state IN ('delivered', 'failed') AND ended_at <= :cut"
                                              " ORDER BY ended_at LIMIT :lim) AND state IN ('delivered', 'failed')"
                                              " AND ended_at <= :cut2",
                              soci::use(cutoff_ms), soci::use(lim), soci::use(cutoff_ms));
        st.execute(true);
        return st.get_affected_rows();
    });
}

}  // namespace batches
