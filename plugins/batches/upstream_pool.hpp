// The upstreams as pools per model: which upstream gets a line, and which are in rotation.
//
// Choice. A line goes to one of the upstreams serving its model (by name, alias or "*") with a
// weight above 0 that is in rotation, not paused by a 429's retry-after, and holds fewer lines
// than its bound (running plus waiting for a connection): 2 x max_concurrency while its cap is
// at max_concurrency (the client's own limit then holds the surplus back, and a freed connection
// finds a line waiting), else the cap itself (the client would send every line it holds, so
// only the cap's worth may be handed to it). Among them the one with the least load relative
// to its capacity wins:
//
//     (load + 1) / (cap x weight), smallest first; a tie goes to the first in config
//
// so with equal caps, lines in flight split by weight (weights 3 and 1 take turns
// A A A B A A A B ...: of 40 lines in flight at once, exactly 30 and 10), and a slower replica,
// whose lines stay in flight longer, gets fewer new ones. A bigger cap is a bigger capacity by
// itself; the weight scales it. The upstream a line last failed on is passed over when another
// one can take the line, so a retry fails over even before that upstream leaves rotation.
//
// Adaptive concurrency (AIMD, as TCP's congestion window and llm-d's batch gateway). Each
// upstream's cap starts at max_concurrency (an upstream that never refuses keeps today's full
// concurrency from the first line, with no slow start) and moves between min_concurrency and
// max_concurrency:
//   - decrease: a 429, a 503 or a timeout halves the cap (rounded down, not below the floor).
//     Halving, as TCP Reno does: a bigger factor (0.7) recovers faster but overshoots an
//     upstream with a hard limit more often, each time costing a round of refused attempts.
//     At most once per round trip: the refusal must come from a line sent after the last
//     decrease (its epoch), and every line sent before it must have answered. A flight of
//     lines sent at the old cap is refused together, and its late refusals (or fast refusals
//     while its slow lines still hold the upstream) say nothing about the new cap.
//   - increase: +1 after a cap's worth of successes (2xx) of the current epoch within
//     latency_target_ms (0: any success), if the upstream held a cap's worth of lines at some
//     point of that window (an upstream that is never full has not shown the cap is safe, so
//     a small batch does not inflate it; RFC 7661's idea).
// The cap is the aqueduct_batches_upstream_concurrency_cap gauge; every decrease, and the
// return to max_concurrency, is an info log line. A 429 or 503 above the floor only lowers the
// cap: overload is not death. At the floor, with nothing left to shed, a 503 counts as a
// failure below like a 500 (an upstream behind a proxy that answers 503 for a dead backend
// leaves rotation after its cap has reached the floor).
//
// Health. An attempt that gets no answer (connection refused or reset, timeout, invalid HTTP) or
// a 5xx (a 503 only at the floor, see above) is a failure; any other answer (2xx, 4xx, 429, a 503
// above the floor) shows the upstream alive and clears the count. failures_before_cooldown failures in a row take the upstream out of rotation for a
// cooldown: cooldown_initial_ms, doubled after each failed probe, at most cooldown_max_ms. When
// the cooldown has passed, the next line for one of its models goes there alone, as the probe
// (a real line: it spends one of that line's attempts, and a failed probe's line is retried
// elsewhere like any other). The probe's success puts the upstream back in rotation and resets
// the cooldown; its failure starts the next, longer, cooldown. Replies to requests sent before
// the upstream went out do not count either way. While every upstream of a model is out, its
// lines stay unclaimed in the database: no attempt is spent on them.
//
// Rate limits. An upstream with max_requests_per_minute or max_tokens_per_minute takes a line
// only while this host's share of its budget allows one (rate_allowance.hpp); pick() spends it.
// The runner draws the shares and learns every host's 429 pauses from the database
// (rate_table.hpp). An upstream out of budget takes no line, not even past its bound.
//
// The health state is this host's (each host learns on its own), kept in one object per
// upstream that also carries its adaptive cap and its rate share. Thread: the
// runner's job thread only (no locks); the load comes from the upstream client, any thread.
#pragma once

#include "config.hpp"
#include "metrics.hpp"
#include "rate_allowance.hpp"
#include "upstream.hpp"

#include <aqueduct/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batches {

// Where a line goes: the upstream (config order), the model name it is sent under, whether it
// is the probe of an upstream coming back from a cooldown, and the upstream's cap epoch (how
// many decreases it had) when it was chosen.
struct upstream_choice {
    std::size_t index = 0;
    std::string model;
    bool probe = false;
    std::uint64_t epoch = 0;
};

// What observe() needs to know of an attempt besides its reply: from its upstream_choice, and
// how long it took from send to answer.
struct sent_attempt {
    bool probe = false;
    std::uint64_t epoch = 0;
    long long latency_ms = 0;
    long long tokens = 0;  // the estimate spent from the rate share (0: the upstream counts none)
};

class upstream_pool {
public:
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    // `load(i)`: requests handed to upstream i and not yet answered (upstream_client::load).
    // `metrics`: where the in-rotation gauge is set (null: nowhere).
    upstream_pool(aq::host host, const config& cfg, std::function<std::size_t(std::size_t)> load,
                  const batch_metrics* metrics);

    // How many more lines of `model` its upstreams can take now (0 while all are busy, paused
    // or out of rotation; a probe due counts as one).
    std::size_t room(std::string_view model, long long now_ms) const;

    // The upstream for one line of `model`, passing over `avoid` when another can take it.
    // Beyond every upstream's 2 x max_concurrency (a line of another model in a mixed batch) the
    // least loaded one in rotation still takes it. nullopt: none is in rotation.
    // `tokens`: the line's estimated tokens (token_estimate.hpp), spent from the rate share of an
    // upstream with max_tokens_per_minute.
    std::optional<upstream_choice> pick(std::string_view model, long long now_ms, std::size_t avoid = none,
                                        long long tokens = 0);

    // What became of an attempt sent to `upstream`. Every pick() is observed exactly once.
    void observe(std::size_t upstream, const upstream_reply& reply, const sent_attempt& sent, long long now_ms);

    // A 429's retry-after: no new lines to `upstream` before `until_ms`. True when that is later
    // than the pause it had.
    bool pause(std::size_t upstream, long long until_ms);
    bool paused(std::size_t upstream, long long now_ms) const { return state_.at(upstream).paused_until > now_ms; }

    bool in_rotation(std::size_t upstream) const;
    // This host's share of the upstream's rate budget (the runner draws and corrects it).
    rate_allowance& rate(std::size_t upstream) { return state_.at(upstream).rate; }
    std::size_t size() const noexcept { return state_.size(); }
    // The current cap on lines in flight (adaptive concurrency above).
    unsigned cap(std::size_t upstream) const { return state_.at(upstream).cap; }

private:
    enum class health { in_rotation, cooling_down, probing };
    struct upstream_state {
        health state = health::in_rotation;
        unsigned failures = 0;          // in a row, while in rotation
        unsigned cooldowns = 0;         // since the last success: the next cooldown's doubling
        long long cooldown_until = 0;   // cooling_down: when a probe may go
        long long paused_until = 0;     // a 429's retry-after
        // Adaptive concurrency; kept across cooldowns.
        unsigned cap = 0;               // min_concurrency..max_concurrency
        std::uint64_t epoch = 0;        // decreases so far
        std::size_t outstanding = 0;    // picked, not yet observed
        std::size_t older = 0;          // of those, picked before the last decrease
        unsigned window = 0;            // successes of this epoch towards the next +1
        std::size_t peak = 0;           // most outstanding at once since the window began
        rate_allowance rate;            // this host's share of the upstream's rate budget
    };

    std::size_t bound(std::size_t i) const {
        unsigned max = cfg_.upstreams[i].max_concurrency;
        return state_[i].cap < max ? state_[i].cap : 2 * static_cast<std::size_t>(max);
    }
    void adapt(std::size_t i, const upstream_reply& reply, const sent_attempt& sent);
    void set_cap(std::size_t i, unsigned cap);
    bool takes_lines(std::size_t i, long long now_ms) const;
    bool probe_due(std::size_t i, long long now_ms) const;
    // Whether `a` (with `load_a`) is less loaded relative to its capacity than `b`.
    bool less_loaded(std::size_t a, std::size_t load_a, std::size_t b, std::size_t load_b) const;
    void start_cooldown(std::size_t i, long long now_ms, const std::string& why);

    aq::host host_;
    const config& cfg_;
    std::function<std::size_t(std::size_t)> load_;
    const batch_metrics* metrics_;
    std::vector<upstream_state> state_;
};

}  // namespace batches
