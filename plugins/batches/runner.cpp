#include "runner.hpp"

#include "model_rewrite.hpp"
#include "retry_after.hpp"
#include "token_estimate.hpp"
#include "wall_clock.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <random>
#include <thread>

namespace batches {

namespace json = boost::json;

namespace {

// Not sent, because every upstream of the line's model was out of rotation when its turn came:
// the attempt is given back. (Also the code of a line whose model no upstream serves any more.)
constexpr const char* no_upstream = "no_upstream_in_rotation";
constexpr const char* model_gone = "model_not_found";
constexpr std::size_t max_failed_on = 100'000;

std::string line_key(const claimed_line& l) { return l.batch_id + " " + std::to_string(l.line_no); }

long long as_count(const json::value* v) {
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<long long>(v->as_uint64());
    return 0;
}

const json::value* path(const json::object& o, std::initializer_list<const char*> keys) {
    const json::value* v = nullptr;
    const json::object* cur = &o;
    for (const char* k : keys) {
        if (!cur) return nullptr;
        v = cur->if_contains(k);
        if (!v) return nullptr;
        cur = v->is_object() ? &v->as_object() : nullptr;
    }
    return v;
}

// Token counts of a chat/completions/embeddings (prompt_/completion_) or responses
// (input_/output_) body.
usage_counts usage_of(const json::object& body) {
    usage_counts u;
    const json::value* usage = body.if_contains("usage");
    if (!usage || !usage->is_object()) return u;
    const auto& o = usage->as_object();
    u.input_tokens = as_count(o.if_contains("prompt_tokens")) + as_count(o.if_contains("input_tokens"));
    u.output_tokens = as_count(o.if_contains("completion_tokens")) + as_count(o.if_contains("output_tokens"));
    u.total_tokens = as_count(o.if_contains("total_tokens"));
    u.cached_tokens = as_count(path(o, {"prompt_tokens_details", "cached_tokens"})) +
                      as_count(path(o, {"input_tokens_details", "cached_tokens"}));
    u.reasoning_tokens = as_count(path(o, {"completion_tokens_details", "reasoning_tokens"})) +
                         as_count(path(o, {"output_tokens_details", "reasoning_tokens"}));
    return u;
}

// Printable ASCII only: an upstream's garbage must not break the UTF-8 of a TEXT column.
std::string printable(std::string_view s, std::size_t max = 2048) {
    std::string out;
    for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    return out;
}

// The upstream's body as stored JSON: itself when it is JSON, else wrapped in an error object.
std::string body_json(const std::string& body, int status) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec) return json::serialize(v);
    json::object err{{"message", printable(body)}, {"type", "upstream_error"}, {"code", status}};
    return json::serialize(json::object{{"error", std::move(err)}});
}

}  // namespace

runner::runner(aq::host host, const config& cfg, batch_table& batches, line_queue& lines,
               const halted_batches& halted, std::string me, const batch_metrics* metrics, rate_table* rates)
    : host_(host), cfg_(cfg), batches_(batches), lines_(lines), halted_(halted), me_(std::move(me)), metrics_(metrics),
      pool_(host, cfg, [this](std::size_t i) { return client_.load(i); }, metrics), rates_(rates),
      client_(cfg.upstreams) {
    for (const auto& u : cfg.upstreams) estimates_tokens_ = estimates_tokens_ || u.max_tokens_per_minute > 0;
}

runner::~runner() = default;

void runner::run() {
    const long long poll = cfg_.poll_interval_ms;
    long long last_empty_claim = 0;
    std::vector<completion> batch;
    bool storage_failed = false;
    while (!host_.stopping()) {
        if (storage_failed) {
            // Give the database a moment instead of spinning on the same replies.
            std::this_thread::sleep_for(std::chrono::milliseconds(poll));
            storage_failed = false;
        }
        {
            std::lock_guard lock(mu_);
            batch.swap(done_);
        }
        if (!batch.empty()) {
            try {
                in_flight_ -= record(batch);
                batch.clear();
            } catch (const std::exception& e) {
                // Keep the replies and try again: a result is never dropped for a storage hiccup.
                std::string what = e.what();
                if (what.size() > 300) what.resize(300);
                host_.warn("batches: recording results failed, will retry: " + what);
                std::lock_guard lock(mu_);
                done_.insert(done_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
                batch.clear();
                storage_failed = true;
                continue;
            }
        }
        long long t = now_ms();
        std::size_t capacity = cfg_.max_in_flight - std::min<std::size_t>(in_flight_, cfg_.max_in_flight);
        // Claim in groups (a query per freed slot would cost more than the requests), and only
        // look again soon after a claim found nothing when something was in flight.
        std::size_t group = std::max<std::size_t>(1, cfg_.max_in_flight / 8);
        bool claimed = false;
        if (capacity > 0 && (capacity >= group || in_flight_ == 0) &&
            (last_empty_claim == 0 || t - last_empty_claim >= poll || (rate_wake_ms_ > 0 && t >= rate_wake_ms_))) {
            try {
                std::size_t n = dispatch(capacity);
                claimed = n > 0;
                last_empty_claim = claimed ? 0 : t;
            } catch (const std::exception& e) {
                std::string what = e.what();
                if (what.size() > 300) what.resize(300);
                host_.warn("batches: claiming lines failed, will retry: " + what);
                storage_failed = true;
                continue;
            }
        }
        if (in_flight_ == 0 && !claimed) {
            std::lock_guard lock(mu_);
            if (done_.empty()) break;  // idle: the scheduler runs us again after poll_interval_ms
        }
        std::unique_lock lock(mu_);
        long long wait = claimed ? 1 : std::min<long long>(poll, 50);
        if (rate_wake_ms_ > t) wait = std::min(wait, rate_wake_ms_ - t);
        cv_.wait_for(lock, std::chrono::milliseconds(wait),
                     [this] { return !done_.empty(); });
    }
}

std::size_t runner::dispatch(std::size_t capacity) {
    long long t = now_ms();
    const long long lease_ms = static_cast<long long>(cfg_.lease_seconds) * 1000;
    auto runnable = batches_.runnable(t / 1000);
    if (runnable.empty()) return 0;
    sync_rates(t, runnable);
    // One queue of batches per owner; owners take turns, starting one further each time.
    std::vector<std::deque<batch_work>> owners;
    for (auto& b : runnable) {
        if (halted_.contains(b.id)) continue;  // cancelled since the query: the claim would refuse it anyway
        if (owners.empty() || owners.back().front().owner != b.owner) owners.emplace_back();
        owners.back().push_back(std::move(b));
    }
    if (owners.empty()) return 0;
    // The database groups an owner's batches together; the turns go in byte order of the keys
    // (whatever the database's collation), starting after the last owner served.
    std::sort(owners.begin(), owners.end(), [](const auto& x, const auto& y) { return x.front().owner < y.front().owner; });
    auto next = std::find_if(owners.begin(), owners.end(), [this](const auto& q) { return q.front().owner > last_owner_; });
    std::rotate(owners.begin(), next == owners.end() ? owners.begin() : next, owners.end());
    std::size_t chunk = std::clamp<std::size_t>(capacity / runnable.size(), 1, 256);
    std::size_t sent = 0;
    while (sent < capacity && !owners.empty()) {
        for (auto it = owners.begin(); it != owners.end() && sent < capacity;) {
            batch_work& b = it->front();
            std::size_t want = std::min(chunk, capacity - sent);
            std::size_t got = 0;
            // An upstream takes at most 2 x max_concurrency lines (running + waiting for a
            // connection): the rest stay unclaimed in the database, where a cancel, an expiry or
            // another host can still reach them. The ones waiting are checked once more right
            // before they are sent (see send()). A model no upstream serves any more (the config
            // changed) is claimed all the same: its lines fail with model_not_found.
            if (cfg_.served(b.model)) want = std::min(want, pool_.room(b.model, t));
            if (want > 0) {
                auto lines = lines_.claim(b, static_cast<int>(want), me_, ++claim_seq_, t, t + lease_ms);
                got = lines.size();
                if (got > 0) last_owner_ = b.owner;
                for (auto& l : lines) send(std::move(l));
            }
            sent += got;
            if (got < want || want == 0) it->pop_front();  // nothing more to take now
            else it->push_back(std::move(it->front())), it->pop_front();
            if (it->empty()) it = owners.erase(it);
            else ++it;
        }
    }
    return sent;
}

void runner::sync_rates(long long t, const std::vector<batch_work>& runnable) {
    rate_wake_ms_ = 0;
    std::vector<rate_table::draw> draws;
    std::vector<std::size_t> drawn;
    for (std::size_t i = 0; i < pool_.size(); ++i) {
        rate_allowance& a = pool_.rate(i);
        if (!a.draw_due(t)) continue;
        const upstream_config& u = cfg_.upstreams[i];
        // Only for work at hand: a share nobody spends would lapse, lost to the other hosts.
        bool wanted = std::any_of(runnable.begin(), runnable.end(),
                                  [&](const batch_work& b) { return u.upstream_model(b.model).has_value(); });
        if (!wanted) continue;
        draws.push_back(rate_table::draw{u.name, a.limits(), a.want_requests(), a.want_tokens()});
        drawn.push_back(i);
    }
    std::vector<rate_grant> grants;
    if (!rates_) {
        for (const auto& d : draws) {
            std::size_t i = drawn[grants.size()];
            grants.push_back(draw_from(local_buckets_[i], d.limits, t, d.requests, d.tokens));
        }
    } else if (!draws.empty() || t - pauses_read_at_ >= rate_burst_ms) {
        auto r = rates_->exchange(draws, t);
        grants = std::move(r.grants);
        pauses_read_at_ = t;
        for (const auto& [name, until] : r.paused_until)
            for (std::size_t i = 0; i < cfg_.upstreams.size(); ++i)
                // Logged when it starts a pause here, not for each later retry-after extending it.
                if (cfg_.upstreams[i].name == name && !pool_.paused(i, t) && pool_.pause(i, until))
                    host_.info("batches: upstream " + name + " paused for " + std::to_string(until - t) +
                               " ms (a 429's retry-after on another host)");
    }
    for (std::size_t k = 0; k < grants.size(); ++k) {
        pool_.rate(drawn[k]).add(grants[k], t);
        if (grants[k].retry_in_ms > 0) {
            long long at = t + grants[k].retry_in_ms;
            rate_wake_ms_ = rate_wake_ms_ == 0 ? at : std::min(rate_wake_ms_, at);
        }
    }
}

void runner::share_pauses() {
    if (!rates_ || pauses_to_share_.empty()) return;
    try {
        for (auto it = pauses_to_share_.begin(); it != pauses_to_share_.end(); it = pauses_to_share_.erase(it))
            rates_->pause(cfg_.upstreams[it->first].name, it->second);
    } catch (const std::exception& e) {
        // Kept for the next call; this host pauses the upstream meanwhile all the same.
        std::string what = e.what();
        if (what.size() > 300) what.resize(300);
        host_.warn("batches: sharing a 429 pause failed, will retry: " + what);
    }
}

void runner::send(claimed_line line) {
    std::size_t avoid = upstream_pool::none;
    if (!failed_on_.empty())
        if (auto it = failed_on_.find(line_key(line)); it != failed_on_.end()) {
            avoid = it->second;
            failed_on_.erase(it);
        }
    long long tokens = estimates_tokens_ ? estimate_tokens(line.endpoint, line.body) : 0;
    auto choice = pool_.pick(line.model, now_ms(), avoid, tokens);
    ++in_flight_;
    if (!choice) {
        upstream_reply r;
        r.started = false;
        r.error_code = cfg_.served(line.model) ? no_upstream : model_gone;
        std::lock_guard lock(mu_);
        done_.push_back(completion{std::move(line), std::move(r), {}, upstream_pool::none, {}});
        return;
    }
    std::size_t index = choice->index;
    std::string path = line.endpoint.starts_with("/v1/") ? line.endpoint.substr(3) : line.endpoint;
    // An alias: the upstream gets its own name for the model, every other byte as stored.
    std::string body = choice->model == line.model ? line.body : with_model(line.body, choice->model);
    // Asked when a connection slot is free, on the client's I/O thread; right before the request
    // is sent, so it also marks the start of the upstream's latency.
    auto sent_at = std::make_shared<std::chrono::steady_clock::time_point>();
    start_check check = [&halted = halted_, batch_id = line.batch_id, expires_at = line.expires_at,
                         sent_at]() -> const char* {
        if (halted.contains(batch_id)) return batch_cancelled.code;
        if (now_s() >= expires_at) return batch_expired.code;
        *sent_at = std::chrono::steady_clock::now();
        return nullptr;
    };
    // Every attempt has an id of its own, sent as x-request-id; the result records the
    // upstream's own id when it answers with one, else this one.
    std::string request_id = aq::random_id("req_");
    client_.send(index, std::move(path), std::move(body), request_id, std::move(check),
                 [this, line = std::move(line), index, sent = sent_attempt{choice->probe, choice->epoch, 0, tokens}, sent_at,
                  request_id](upstream_reply reply) mutable {
                     auto latency = std::chrono::steady_clock::now() - *sent_at;
                     if (metrics_) metrics_->upstream_reply(index, reply, latency);
                     if (reply.started)
                         sent.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(latency).count();
                     {
                         std::lock_guard lock(mu_);
                         done_.push_back(
                             completion{std::move(line), std::move(reply), std::move(request_id), index, sent});
                     }
                     cv_.notify_one();
                 });
}

long long runner::backoff_ms(long long attempts, long long retry_after_ms) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    double base = cfg_.backoff_initial_ms;
    for (long long i = 1; i < attempts && base < cfg_.backoff_max_ms; ++i) base *= 2;
    base = std::min<double>(base, cfg_.backoff_max_ms);
    // Jitter over the upper half keeps retries of a burst apart without making them eager.
    long long delay = static_cast<long long>(std::uniform_real_distribution<double>(base / 2, base)(rng));
    return std::max(delay, retry_after_ms);
}

line_outcome runner::outcome_of(const completion& c, long long t) {
    const upstream_reply& rep = c.reply;
    line_outcome o;
    o.line = &c.line;
    result_row& r = o.result;
    r.line_no = c.line.line_no;
    r.custom_id = c.line.custom_id;
    bool retryable = false;
    long long retry_after = -1;
    if (!rep.started && rep.error_code == no_upstream) {
        // Claimed while an upstream could take it, but none could when its turn came: back to
        // the queue with its attempt given back, for when one is in rotation again.
        o.retry = true;
        o.unsent = true;
        o.next_ms = t + cfg_.poll_interval_ms;
        o.last_error = "not sent: no upstream of the model in rotation";
        return o;
    }
    if (!rep.started && rep.error_code == model_gone) {
        r.error_code = model_gone;
        r.error_message = "No upstream serves the model " + printable(c.line.model, 256) +
                          " any more (the configuration changed after the batch was created).";
        r.req_id = aq::random_id("batch_req_");
        return o;
    }
    if (!rep.started) {
        // Never sent: its batch was cancelled or ran out of time while it waited for a
        // connection. Anything else (the check itself failed) is tried again later.
        const unrun_reason* why = rep.error_code == batch_cancelled.code ? &batch_cancelled
                                  : rep.error_code == batch_expired.code ? &batch_expired
                                                                         : nullptr;
        if (!why) {
            o.retry = true;
            o.next_ms = t + backoff_ms(1, -1);
            o.last_error = "not sent: " + printable(rep.error_code);
            return o;
        }
        r.error_code = why->code;
        r.error_message = why->message;
        r.req_id = aq::random_id("batch_req_");
        return o;
    }
    if (rep.status >= 200 && rep.status < 300) {
        boost::system::error_code ec;
        json::value v = json::parse(rep.body, ec);
        if (!ec && v.is_object()) {
            o.success = true;
            r.status_code = rep.status;
            r.response_body = json::serialize(v);
            o.usage = usage_of(v.as_object());
        } else {
            retryable = true;
            r.error_code = "invalid_response";
            r.error_message = "The upstream answered " + std::to_string(rep.status) + " with a body that is not a JSON object.";
        }
    } else if (rep.status > 0) {
        retryable = rep.status == 429 || rep.status >= 500;
        const long long cap_ms = static_cast<long long>(cfg_.max_retry_after_seconds) * 1000;
        retry_after = retry_after_delay_ms(rep.retry_after_ms, rep.retry_after, t / 1000, cap_ms).value_or(-1);
        if (rep.status == 429 && retry_after > 0) {
            if (!pool_.paused(c.upstream, t) && pool_.pause(c.upstream, t + retry_after))
                host_.info("batches: upstream " + cfg_.upstreams[c.upstream].name + " paused for " +
                           std::to_string(retry_after) + " ms (a 429's retry-after)");
            pool_.pause(c.upstream, t + retry_after);
            long long& until = pauses_to_share_[c.upstream];
            until = std::max(until, t + retry_after);
        }
        r.status_code = rep.status;
        r.response_body = body_json(rep.body, rep.status);
    } else {
        retryable = true;
        r.error_code = rep.error_code;
        r.error_message = rep.error_message;
    }
    if (retryable && c.line.attempts < static_cast<long long>(cfg_.max_attempts)) {
        if (failed_on_.size() >= max_failed_on) failed_on_.clear();
        failed_on_[line_key(c.line)] = c.upstream;
        o.retry = true;
        o.next_ms = t + backoff_ms(c.line.attempts, retry_after);
        o.last_error = printable(r.status_code ? "HTTP " + std::to_string(r.status_code) : r.error_message);
        return o;
    }
    r.req_id = aq::random_id("batch_req_");
    r.request_id = rep.request_id.empty() ? c.sent_request_id : printable(rep.request_id, 200);
    return o;
}

std::size_t runner::record(std::vector<completion>& done) {
    long long t = now_ms();
    for (auto& c : done)
        if (!c.observed) {
            if (c.upstream != upstream_pool::none) pool_.observe(c.upstream, c.reply, c.sent, t);
            c.observed = true;
        }
    std::vector<line_outcome> outcomes;
    outcomes.reserve(done.size());
    for (const auto& c : done) outcomes.push_back(outcome_of(c, t));
    lines_.record(me_, outcomes);  // a reply whose lease was lost is dropped there
    // The usage corrects the rate share's estimate (a lost lease's reply was sent all the same);
    // an answer that is not a 2xx generated nothing; without an answer nobody knows.
    for (std::size_t k = 0; k < done.size(); ++k) {
        const completion& c = done[k];
        if (c.sent.tokens <= 0 || c.upstream == upstream_pool::none) continue;
        if (outcomes[k].success && outcomes[k].usage.total_tokens > 0)
            pool_.rate(c.upstream).correct(c.sent.tokens, outcomes[k].usage.total_tokens);
        else if (c.reply.status > 0 && (c.reply.status < 200 || c.reply.status >= 300))
            pool_.rate(c.upstream).correct(c.sent.tokens, 0);
    }
    share_pauses();
    if (metrics_) {
        std::vector<std::size_t> upstreams;
        upstreams.reserve(done.size());
        for (const auto& c : done) upstreams.push_back(c.upstream == upstream_pool::none ? SIZE_MAX : c.upstream);
        metrics_->lines_recorded(outcomes, upstreams);
    }
    return done.size();
}

}  // namespace batches
