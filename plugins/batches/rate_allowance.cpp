#include "rate_allowance.hpp"

#include <algorithm>

namespace batches {

namespace {

// A share: rate_burst_ms worth of a per-minute limit, at least one.
long long share(unsigned long long per_minute) {
    return std::max<long long>(1, static_cast<long long>(per_minute * rate_burst_ms / 60'000));
}

}  // namespace

std::size_t rate_allowance::room(long long now_ms) const noexcept {
    if (!limited()) return static_cast<std::size_t>(-1);
    if (!live(now_ms)) return 0;
    std::size_t n = static_cast<std::size_t>(-1);
    if (limits_.requests_per_minute > 0) n = static_cast<std::size_t>(std::max<long long>(0, requests_));
    if (limits_.tokens_per_minute > 0)
        n = std::min<std::size_t>(n, tokens_ <= 0 ? 0 : static_cast<std::size_t>((tokens_ + avg_tokens_ - 1) / avg_tokens_));
    return n;
}

long long rate_allowance::counted(long long tokens) const noexcept {
    return std::clamp<long long>(tokens, 0, static_cast<long long>(limits_.tokens_per_minute));
}

void rate_allowance::spend(long long tokens) noexcept {
    if (limits_.requests_per_minute > 0) --requests_;
    if (limits_.tokens_per_minute > 0) {
        tokens = counted(tokens);
        tokens_ -= tokens;
        // A moving average over about the last 16 lines: what room() divides by.
        avg_tokens_ = std::max<long long>(1, avg_tokens_ + (tokens - avg_tokens_) / 16);
    }
}

void rate_allowance::correct(long long estimated, long long actual) noexcept {
    if (limits_.tokens_per_minute > 0) tokens_ += counted(estimated) - counted(actual);
}

bool rate_allowance::draw_due(long long now_ms) const noexcept {
    return limited() && now_ms >= next_draw_ && room(now_ms) == 0;
}

long long rate_allowance::want_requests() const noexcept {
    return limits_.requests_per_minute > 0 ? share(limits_.requests_per_minute) : 0;
}

long long rate_allowance::want_tokens() const noexcept {
    if (limits_.tokens_per_minute == 0) return 0;
    return share(limits_.tokens_per_minute);
}

void rate_allowance::add(const rate_grant& g, long long now_ms) noexcept {
    // What is left of a lapsed share goes, except a token debt.
    if (!live(now_ms)) {
        requests_ = 0;
        tokens_ = std::min<long long>(tokens_, 0);
    }
    requests_ += g.requests;
    tokens_ += g.tokens;
    if (g.requests > 0 || g.tokens > 0) until_ = now_ms + rate_burst_ms;
    next_draw_ = now_ms + g.retry_in_ms;
}

}  // namespace batches
