// The rate budgets and 429 pauses every host shares: one row per upstream in
// batch_upstream_limits (keyed by the upstream's config name), on the plugin's database, so N
// hosts on one PostgreSQL together stay within an upstream's max_requests_per_minute and
// max_tokens_per_minute, and a 429's retry-after received by one host pauses the upstream for
// all. SQLite (one host) uses the same table.
//
// Each limit is a token bucket: it refills at limit/60,000 per millisecond up to a burst of
// rate_burst_ms worth of the limit (at least one request or token), and starts full. A host
// does not go to the database per request: it draws a share (rate_burst_ms worth, the most the
// bucket can hold) in one short transaction and spends it locally (rate_allowance.hpp) for at
// most rate_burst_ms; what it has not spent by then lapses. So over any window of W ms the
// upstream receives at most burst + limit x W + one share (a share drawn just before the window
// and spent inside it), plus one line's tokens per host (below), i.e. a little above the limit
// over a minute and within about 1.4x over a second.
//
// A draw never takes more than the bucket holds, in whole requests and tokens. A line may need
// more tokens than a share (or the burst): the host sends it while its balance is above 0 and
// pays the debt from its next shares (rate_allowance.hpp), so a host exceeds what it drew by
// at most one line's estimate, and the buckets never go below 0.
//
// The draws' arithmetic is a pure function (draw_from), tested without a database; the
// transaction locks the row (sql::dialect::lock) between reading and writing it.
#pragma once

#include "sql/pool.hpp"

#include <map>
#include <string>
#include <vector>

namespace batches {

// How long a bucket's burst, and a host's share, last.
inline constexpr long long rate_burst_ms = 200;

// 0: no limit of that kind.
struct bucket_limits {
    unsigned long long requests_per_minute = 0, tokens_per_minute = 0;
};

// A bucket's row: levels in thousandths of a request / token (refills are fractions).
struct bucket_level {
    long long requests_milli = 0, tokens_milli = 0;
    long long refilled_at_ms = 0;  // 0: never drawn (full)
};

// What a draw got, and when the next one could get something when it got less than asked.
struct rate_grant {
    long long requests = 0, tokens = 0;
    long long retry_in_ms = 0;  // 0: got everything asked for
};

// Refills `level` up to `now_ms` and takes what it can of the wanted requests and tokens (an
// unlimited kind is granted whole without touching its level).
rate_grant draw_from(bucket_level& level, const bucket_limits& limits, long long now_ms, long long want_requests,
                     long long want_tokens);

class rate_table {
public:
    explicit rate_table(aq::sql::pool& pool) : pool_(pool) {}

    struct draw {
        std::string upstream;
        bucket_limits limits;
        long long requests = 0, tokens = 0;
    };
    struct exchange_result {
        std::vector<rate_grant> grants;                   // one per draw, in order
        std::map<std::string, long long> paused_until;    // every upstream with a row
    };
    // In one transaction: the draws, then every upstream's paused_until.
    exchange_result exchange(const std::vector<draw>& draws, long long now_ms);
    // No new lines to `upstream` before `until_ms`, on any host (a later pause stays).
    void pause(const std::string& upstream, long long until_ms);

private:
    aq::sql::pool& pool_;
};

}  // namespace batches
