// This host's share of one upstream's rate budget (rate_table.hpp has the shared buckets): the
// requests and tokens it may still send, drawn from the database for rate_burst_ms at a time,
// so the database sees a short transaction per share, not a query per request.
//
// - A line is allowed while the share holds a request and a token balance above 0 and has not
//   lapsed; sending it spends one request and its estimated tokens (the balance may go below
//   0: the next shares pay that debt first, one share per draw, so paying it takes the bucket's
//   time).
// - The reply's usage.total_tokens corrects the estimate: the difference is given back to or
//   taken from the balance; an answer that is not a 2xx gives the whole estimate back (a
//   refused request generated nothing). A line counts for at most a minute's worth of the
//   limit, so one body asking for absurd max_tokens cannot stall the upstream for longer. A debt outlives the share's lapse; unspent tokens and requests do
//   not (spent late, next to other hosts' fresh shares, they would exceed the limit).
// - A draw is due when the share is spent or lapsed and the bucket's last answer said it would
//   have something by now.
// An upstream without limits is always allowed and never draws. Thread: the runner's job thread.
#pragma once

#include "rate_table.hpp"

#include <cstddef>

namespace batches {

// A line's estimated tokens when its body does not say how many it may generate.
inline constexpr long long default_completion_tokens = 256;

class rate_allowance {
public:
    rate_allowance() = default;
    explicit rate_allowance(bucket_limits limits) : limits_(limits) {}

    bool limited() const noexcept { return limits_.requests_per_minute > 0 || limits_.tokens_per_minute > 0; }
    const bucket_limits& limits() const noexcept { return limits_; }

    bool allows(long long now_ms) const noexcept { return room(now_ms) > 0; }
    // How many more lines the share can send now (tokens counted at the average estimate).
    std::size_t room(long long now_ms) const noexcept;
    void spend(long long tokens) noexcept;
    void correct(long long estimated, long long actual) noexcept;

    bool draw_due(long long now_ms) const noexcept;
    // What to ask the bucket for: a share's worth.
    long long want_requests() const noexcept;
    long long want_tokens() const noexcept;
    void add(const rate_grant& g, long long now_ms) noexcept;

private:
    bool live(long long now_ms) const noexcept { return now_ms < until_; }
    long long counted(long long tokens) const noexcept;

    bucket_limits limits_;
    long long requests_ = 0, tokens_ = 0;
    long long until_ = 0;       // the share lapses at this time
    long long next_draw_ = 0;   // not before (a short grant's retry_in)
    long long avg_tokens_ = default_completion_tokens;  // running average of the estimates spent
};

}  // namespace batches
