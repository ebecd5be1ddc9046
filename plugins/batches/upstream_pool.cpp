#include "upstream_pool.hpp"

#include <algorithm>

namespace batches {

upstream_pool::upstream_pool(aq::host host, const config& cfg, std::function<std::size_t(std::size_t)> load,
                             const batch_metrics* metrics)
    : host_(host), cfg_(cfg), load_(std::move(load)), metrics_(metrics), state_(cfg.upstreams.size()) {
    for (std::size_t i = 0; i < state_.size(); ++i) {
        set_cap(i, cfg_.upstreams[i].max_concurrency);
        state_[i].rate = rate_allowance({cfg_.upstreams[i].max_requests_per_minute, cfg_.upstreams[i].max_tokens_per_minute});
    }
}

void upstream_pool::set_cap(std::size_t i, unsigned cap) {
    state_[i].cap = cap;
    if (metrics_) metrics_->upstream_concurrency_cap(i, cap);
}

bool upstream_pool::takes_lines(std::size_t i, long long now_ms) const {
    return cfg_.upstreams[i].weight > 0 && state_[i].state == health::in_rotation && state_[i].paused_until <= now_ms &&
           state_[i].rate.allows(now_ms);
}

bool upstream_pool::probe_due(std::size_t i, long long now_ms) const {
    return cfg_.upstreams[i].weight > 0 && state_[i].state == health::cooling_down &&
           state_[i].cooldown_until <= now_ms && state_[i].paused_until <= now_ms && state_[i].rate.allows(now_ms);
}

bool upstream_pool::less_loaded(std::size_t a, std::size_t load_a, std::size_t b, std::size_t load_b) const {
    // (load_a + 1) / cap_a < (load_b + 1) / cap_b, in integers.
    auto cap = [this](std::size_t i) {
        return static_cast<unsigned long long>(state_[i].cap) * cfg_.upstreams[i].weight;
    };
    return (load_a + 1ull) * cap(b) < (load_b + 1ull) * cap(a);
}

std::size_t upstream_pool::room(std::string_view model, long long now_ms) const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < state_.size(); ++i) {
        if (!cfg_.upstreams[i].upstream_model(model)) continue;
        if (takes_lines(i, now_ms)) {
            std::size_t load = load_(i);
            n += std::min(load < bound(i) ? bound(i) - load : 0, state_[i].rate.room(now_ms));
        } else if (probe_due(i, now_ms)) {
            n += 1;
        }
    }
    return n;
}

std::optional<upstream_choice> upstream_pool::pick(std::string_view model, long long now_ms, std::size_t avoid,
                                                   long long tokens) {
    std::size_t best = none, best_load = 0;        // in rotation, with room, not `avoid`
    std::size_t avoided = none;                     // `avoid`, when it qualifies
    std::size_t overflow = none, overflow_load = 0; // in rotation, beyond its bound
    for (std::size_t i = 0; i < state_.size(); ++i) {
        if (!cfg_.upstreams[i].upstream_model(model)) continue;
        if (i != avoid && probe_due(i, now_ms)) {
            // A probe goes first: the sooner it answers, the sooner capacity comes back.
            state_[i].state = health::probing;
            ++state_[i].outstanding;
            state_[i].rate.spend(tokens);
            return upstream_choice{i, std::string(*cfg_.upstreams[i].upstream_model(model)), true, state_[i].epoch};
        }
        if (!takes_lines(i, now_ms)) continue;
        std::size_t load = load_(i);
        if (load >= bound(i)) {
            if (overflow == none || less_loaded(i, load, overflow, overflow_load)) overflow = i, overflow_load = load;
        } else if (i == avoid) {
            avoided = i;
        } else if (best == none || less_loaded(i, load, best, best_load)) {
            best = i, best_load = load;
        }
    }
    std::size_t chosen = best != none ? best : avoided != none ? avoided : overflow;
    if (chosen == none) return std::nullopt;
    upstream_state& s = state_[chosen];
    s.peak = std::max(s.peak, ++s.outstanding);
    s.rate.spend(tokens);
    return upstream_choice{chosen, std::string(*cfg_.upstreams[chosen].upstream_model(model)), false, s.epoch};
}

void upstream_pool::start_cooldown(std::size_t i, long long now_ms, const std::string& why) {
    upstream_state& s = state_[i];
    unsigned long long ms = cfg_.cooldown_initial_ms;
    for (unsigned k = 0; k < s.cooldowns && ms < cfg_.cooldown_max_ms; ++k) ms *= 2;
    ms = std::min<unsigned long long>(ms, cfg_.cooldown_max_ms);
    ++s.cooldowns;
    s.state = health::cooling_down;
    s.cooldown_until = now_ms + static_cast<long long>(ms);
    s.failures = 0;
    host_.warn("batches: upstream " + cfg_.upstreams[i].name + " out of rotation for " + std::to_string(ms) +
               " ms (" + why + "); a probe follows");
    if (metrics_) metrics_->upstream_in_rotation(i, false);
}

void upstream_pool::adapt(std::size_t i, const upstream_reply& reply, const sent_attempt& sent) {
    upstream_state& s = state_[i];
    const upstream_config& u = cfg_.upstreams[i];
    // Saturating: a test may observe what it never picked.
    if (s.outstanding > 0) --s.outstanding;
    if (sent.epoch != s.epoch) {
        if (s.older > 0) --s.older;
        return;  // sent before the last decrease: says nothing about the current cap
    }
    if (!reply.started) return;
    bool overload = reply.status == 429 || reply.status == 503 || (reply.status == 0 && reply.error_code == "timeout");
    if (overload) {
        if (s.older > 0 || s.cap <= u.min_concurrency) return;  // once per round trip; nothing to shed
        unsigned from = s.cap;
        set_cap(i, std::max(u.min_concurrency, s.cap / 2));
        ++s.epoch;
        s.older = s.outstanding;
        s.window = 0;
        s.peak = s.outstanding;
        std::string what = reply.status > 0 ? "HTTP " + std::to_string(reply.status) : reply.error_code;
        host_.info("batches: upstream " + u.name + " concurrency cap " + std::to_string(from) + " -> " +
                   std::to_string(s.cap) + " (" + what + ")");
        return;
    }
    bool success = reply.status >= 200 && reply.status < 300;
    if (!success || (u.latency_target_ms > 0 && sent.latency_ms > static_cast<long long>(u.latency_target_ms))) return;
    if (++s.window < s.cap) return;
    s.window = 0;
    bool full = s.peak >= s.cap;
    s.peak = s.outstanding;
    if (!full || s.cap >= u.max_concurrency) return;
    set_cap(i, s.cap + 1);
    if (s.cap == u.max_concurrency)
        host_.info("batches: upstream " + u.name + " concurrency cap back at max_concurrency " + std::to_string(s.cap));
}

void upstream_pool::observe(std::size_t upstream, const upstream_reply& reply, const sent_attempt& sent,
                            long long now_ms) {
    if (upstream >= state_.size()) return;
    upstream_state& s = state_[upstream];
    bool at_floor = s.cap <= cfg_.upstreams[upstream].min_concurrency;  // before this reply's decrease
    adapt(upstream, reply, sent);
    bool probe = sent.probe;
    if (!reply.started) {
        // Never sent (its batch was halted while it waited): a probe that did not happen.
        if (probe && s.state == health::probing) s.state = health::cooling_down, s.cooldown_until = now_ms;
        return;
    }
    // A 503 above the floor is overload, handled by the cap alone; at the floor it is a failure.
    bool failed = reply.status == 0 || (reply.status >= 500 && (reply.status != 503 || at_floor));
    std::string what = reply.status > 0 ? "HTTP " + std::to_string(reply.status) : reply.error_code;
    if (probe && s.state == health::probing) {
        if (failed) {
            start_cooldown(upstream, now_ms, "the probe failed: " + what);
            return;
        }
        s.state = health::in_rotation;
        s.failures = 0;
        s.cooldowns = 0;
        s.cooldown_until = 0;
        host_.info("batches: upstream " + cfg_.upstreams[upstream].name + " back in rotation (the probe answered " +
                   what + ")");
        if (metrics_) metrics_->upstream_in_rotation(upstream, true);
        return;
    }
    if (s.state != health::in_rotation) return;  // sent before it went out
    if (!failed) {
        s.failures = 0;
        s.cooldowns = 0;
        return;
    }
    if (++s.failures >= cfg_.failures_before_cooldown)
        start_cooldown(upstream, now_ms,
                       std::to_string(s.failures) + (s.failures == 1 ? " failed attempt" : " failed attempts") +
                           " in a row, the last: " + what);
}

bool upstream_pool::pause(std::size_t upstream, long long until_ms) {
    if (upstream >= state_.size() || state_[upstream].paused_until >= until_ms) return false;
    state_[upstream].paused_until = until_ms;
    return true;
}

bool upstream_pool::in_rotation(std::size_t upstream) const {
    return upstream < state_.size() && state_[upstream].state == health::in_rotation;
}

}  // namespace batches
