#include "rate_table.hpp"

#include "sql/dialect.hpp"
#include "sql/transaction.hpp"

#include <soci/soci.h>

#include <algorithm>

namespace batches {

namespace {

// The advisory lock space of a bucket row ("brte"): one lock per upstream name.
constexpr std::int32_t lock_space = 0x62727465;

// A bucket's capacity in thousandths: rate_burst_ms worth of the limit, at least one unit.
long long capacity_milli(unsigned long long per_minute) {
    return std::max<long long>(1000, static_cast<long long>(per_minute * rate_burst_ms / 60));
}

// The level after `dt_ms` of refill, at most the capacity. dt is capped at a minute (a full
// bucket by then for any limit) so that the product cannot overflow.
long long refilled(long long level, unsigned long long per_minute, long long dt_ms) {
    long long cap = capacity_milli(per_minute);
    dt_ms = std::clamp<long long>(dt_ms, 0, 60'000);
    // milli per ms = per_minute x 1000 / 60000 = per_minute / 60.
    long long add = static_cast<long long>(static_cast<unsigned long long>(dt_ms) * per_minute / 60);
    return level >= cap ? level : std::min(cap, level + add);
}

// Milliseconds until `level` reaches `target` (both thousandths) at `per_minute`.
long long time_to(long long level, long long target, unsigned long long per_minute) {
    if (level >= target) return 0;
    auto missing = static_cast<unsigned long long>(target - level);
    return static_cast<long long>((missing * 60 + per_minute - 1) / per_minute);
}

}  // namespace

rate_grant draw_from(bucket_level& level, const bucket_limits& limits, long long now_ms, long long want_requests,
                     long long want_tokens) {
    const bool fresh = level.refilled_at_ms == 0;
    const long long dt = now_ms - level.refilled_at_ms;
    level.refilled_at_ms = now_ms;
    long long& req = level.requests_milli;
    long long& tok = level.tokens_milli;
    const unsigned long long rpm = limits.requests_per_minute, tpm = limits.tokens_per_minute;
    if (rpm > 0) req = fresh ? capacity_milli(rpm) : refilled(req, rpm, dt);
    if (tpm > 0) tok = fresh ? capacity_milli(tpm) : refilled(tok, tpm, dt);
    rate_grant g;
    // Requests without tokens (or the reverse) could not be spent: a draw gets both or neither.
    long long requests = rpm == 0 ? want_requests : std::clamp<long long>(req / 1000, 0, want_requests);
    long long tokens = tpm == 0 ? want_tokens : std::clamp<long long>(tok / 1000, 0, want_tokens);
    if ((requests > 0 || want_requests == 0) && (tokens > 0 || want_tokens == 0)) {
        g.requests = requests;
        g.tokens = tokens;
        if (rpm > 0) req -= requests * 1000;
        if (tpm > 0) tok -= tokens * 1000;
    }
    if (g.requests < want_requests || g.tokens < want_tokens) {
        long long wait = 1;  // ask again when the bucket has something; at least a millisecond later
        if (rpm > 0) wait = std::max(wait, time_to(req, 1000, rpm));
        if (tpm > 0) wait = std::max(wait, time_to(tok, 1000, tpm));
        g.retry_in_ms = wait;
    }
    return g;
}

rate_table::exchange_result rate_table::exchange(const std::vector<draw>& draws, long long now_ms) {
    return pool_.run([&](soci::session& sql) {
        exchange_result out;
        aq::sql::dialect d(pool_.kind());
        if (!draws.empty()) {
            aq::sql::write_transaction tx(sql, pool_.kind());
            for (const auto& w : draws) {
                sql << "INSERT INTO batch_upstream_limits (upstream) VALUES (:u) ON CONFLICT (upstream) DO NOTHING",
                    soci::use(w.upstream);
                d.lock(sql, lock_space, w.upstream);
                bucket_level level;
                sql << "SELECT requests_milli, tokens_milli, refilled_at FROM batch_upstream_limits WHERE upstream = :u",
                    soci::into(level.requests_milli), soci::into(level.tokens_milli), soci::into(level.refilled_at_ms),
                    soci::use(w.upstream);
                out.grants.push_back(draw_from(level, w.limits, now_ms, w.requests, w.tokens));
                sql << "UPDATE batch_upstream_limits SET requests_milli = :r, tokens_milli = :t, refilled_at = :at"
                       " WHERE upstream = :u",
                    soci::use(level.requests_milli), soci::use(level.tokens_milli), soci::use(level.refilled_at_ms),
                    soci::use(w.upstream);
            }
            tx.commit();
        }
        std::string name;
        long long until = 0;
        soci::statement st = (sql.prepare << "SELECT upstream, paused_until FROM batch_upstream_limits WHERE paused_until > :now",
                              soci::into(name), soci::into(until), soci::use(now_ms));
        st.execute();
        while (st.fetch()) out.paused_until[name] = until;
        return out;
    });
}

void rate_table::pause(const std::string& upstream, long long until_ms) {
    pool_.run([&](soci::session& sql) {
        aq::sql::write_transaction tx(sql, pool_.kind());
        sql << "INSERT INTO batch_upstream_limits (upstream) VALUES (:u) ON CONFLICT (upstream) DO NOTHING",
            soci::use(upstream);
        sql << "UPDATE batch_upstream_limits SET paused_until = :t WHERE upstream = :u AND paused_until < :t2",
            soci::use(until_ms), soci::use(upstream), soci::use(until_ms);
        tx.commit();
    });
}

}  // namespace batches
