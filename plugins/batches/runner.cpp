#include "runner.hpp"

#include "finalizer.hpp"
#include "sql/transaction.hpp"
#include "validation.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <random>
#include <thread>

namespace batches {

namespace json = boost::json;

namespace {

long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

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

runner::runner(aq::host host, const config& cfg, store& db, const aq_files_v1& files)
    : host_(host), cfg_(cfg), db_(db), files_(files), me_(aq::random_id("host_", 16)),
      paused_until_(cfg.upstreams.size(), 0), client_(cfg.upstreams) {}

runner::~runner() = default;

void runner::run() {
    const long long poll = cfg_.poll_interval_ms;
    const long long lease_ms = static_cast<long long>(cfg_.lease_seconds) * 1000;
    long long last_housekeeping = 0, last_renew = now_ms(), last_empty_claim = 0;
    std::vector<completion> batch;
    bool storage_failed = false;
    while (!host_.stopping()) {
        if (storage_failed) {
            // Give the database a moment instead of spinning on the same replies.
            std::this_thread::sleep_for(std::chrono::milliseconds(poll));
            storage_failed = false;
        }
        long long t = now_ms();
        if (t - last_housekeeping >= poll) {
            housekeeping();
            last_housekeeping = now_ms();
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
                host_.warn(std::string("recording results failed, will retry: ") + e.what());
                std::lock_guard lock(mu_);
                done_.insert(done_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
                batch.clear();
                storage_failed = true;
                continue;
            }
        }
        t = now_ms();
        if (in_flight_ > 0 && t - last_renew >= lease_ms / 3) {
            db_.renew_leases(me_, t + lease_ms);
            last_renew = t;
        }
        std::size_t capacity = cfg_.max_in_flight - std::min<std::size_t>(in_flight_, cfg_.max_in_flight);
        // Claim in groups (a query per freed slot would cost more than the requests), and only
        // look again soon after a claim found nothing when something was in flight.
        std::size_t group = std::max<std::size_t>(1, cfg_.max_in_flight / 8);
        bool claimed = false;
        if (capacity > 0 && (capacity >= group || in_flight_ == 0) &&
            (last_empty_claim == 0 || t - last_empty_claim >= poll)) {
            std::size_t n = dispatch(capacity);
            claimed = n > 0;
            if (!claimed) last_empty_claim = t;
            else last_empty_claim = 0;
        }
        if (in_flight_ == 0 && !claimed) {
            std::lock_guard lock(mu_);
            if (done_.empty()) break;  // idle: the scheduler runs us again after poll_interval_ms
        }
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(claimed ? 1 : std::min<long long>(poll, 50)),
                     [this] { return !done_.empty(); });
    }
}

void runner::housekeeping() {
    long long t = now_ms();
    const long long lease_ms = static_cast<long long>(cfg_.lease_seconds) * 1000;
    for (const auto& b : db_.validating(t, 4)) {
        if (!db_.lease_batch(b.id, me_, t, t + lease_ms)) continue;
        try {
            validate_batch(cfg_, db_, files_, b);
        } catch (const std::exception& e) {
            host_.warn("validating " + b.id + " failed, will retry: " + e.what());
        }
    }
    try {
        finalize_ready(cfg_, db_, files_, me_);
    } catch (const std::exception& e) {
        host_.warn(std::string("finalizing failed, will retry: ") + e.what());
    }
}

std::size_t runner::dispatch(std::size_t capacity) {
    long long t = now_ms();
    const long long lease_ms = static_cast<long long>(cfg_.lease_seconds) * 1000;
    auto runnable = db_.runnable(t / 1000);
    if (runnable.empty()) return 0;
    // One queue of batches per owner; owners take turns, starting one further each time.
    std::vector<std::deque<batch_work>> owners;
    for (auto& b : runnable) {
        if (owners.empty() || owners.back().front().owner != b.owner) owners.emplace_back();
        owners.back().push_back(std::move(b));
    }
    std::rotate(owners.begin(), owners.begin() + static_cast<std::ptrdiff_t>(rr_++ % owners.size()), owners.end());
    std::size_t chunk = std::clamp<std::size_t>(capacity / runnable.size(), 1, 256);
    std::size_t sent = 0;
    while (sent < capacity && !owners.empty()) {
        for (auto it = owners.begin(); it != owners.end() && sent < capacity;) {
            batch_work& b = it->front();
            const upstream_config* up = cfg_.upstream_for(b.model);
            std::size_t index = up ? static_cast<std::size_t>(up - cfg_.upstreams.data()) : 0;
            std::size_t want = std::min(chunk, capacity - sent);
            std::size_t got = 0;
            // An upstream takes at most 2 x max_concurrency lines (running + waiting for a
            // connection): the rest stay unclaimed in the database, where a cancel, an expiry or
            // another host can still reach them. Claiming more would queue lines in this
            // process that a cancel no longer stops.
            std::size_t room = 0;
            if (up && paused_until_[index] <= t) {
                std::size_t queued = client_.load(index), bound = 2 * static_cast<std::size_t>(up->max_concurrency);
                room = queued < bound ? bound - queued : 0;
            }
            if (up) want = std::min(want, room);
            if (!up || want > 0) {
                auto lines = db_.claim(b, static_cast<int>(want), me_, ++claim_seq_, t, t + lease_ms);
                got = lines.size();
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

void runner::send(claimed_line line) {
    const upstream_config* up = cfg_.upstream_for(line.model);
    std::size_t index = up ? static_cast<std::size_t>(up - cfg_.upstreams.data()) : 0;
    std::string path = line.endpoint.starts_with("/v1/") ? line.endpoint.substr(3) : line.endpoint;
    std::string body = line.body;
    ++in_flight_;
    client_.send(index, std::move(path), std::move(body), [this, line = std::move(line)](upstream_reply reply) mutable {
        {
            std::lock_guard lock(mu_);
            done_.push_back(completion{std::move(line), std::move(reply)});
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

std::size_t runner::record(std::vector<completion>& done) {
    struct delta {
        long long completed = 0, failed = 0;
        usage_counts usage;
    };
    std::map<std::string, delta> deltas;
    auto lease = db_.pool().lease();
    soci::session& sql = *lease;
    aq::sql::write_transaction tx(sql, db_.kind());
    store::recorder rec(sql, me_);
    long long t = now_ms();
    for (auto& c : done) {
        const upstream_reply& rep = c.reply;
        result_row r;
        r.line_no = c.line.line_no;
        r.custom_id = c.line.custom_id;
        usage_counts u;
        bool retryable = false, success = false;
        std::string last_error;
        if (rep.status >= 200 && rep.status < 300) {
            boost::system::error_code ec;
            json::value v = json::parse(rep.body, ec);
            if (!ec && v.is_object()) {
                success = true;
                r.status_code = rep.status;
                r.response_body = json::serialize(v);
                u = usage_of(v.as_object());
            } else {
                retryable = true;
                r.error_code = "invalid_response";
                r.error_message = "The upstream answered " + std::to_string(rep.status) + " with a body that is not a JSON object.";
            }
        } else if (rep.status > 0) {
            retryable = rep.status == 429 || rep.status >= 500;
            if (rep.status == 429 && rep.retry_after_ms > 0)
                if (const upstream_config* up = cfg_.upstream_for(c.line.model)) {
                    long long& until = paused_until_[static_cast<std::size_t>(up - cfg_.upstreams.data())];
                    until = std::max(until, t + rep.retry_after_ms);
                }
            r.status_code = rep.status;
            r.response_body = body_json(rep.body, rep.status);
        } else {
            retryable = true;
            r.error_code = rep.error_code;
            r.error_message = rep.error_message;
        }
        if (retryable && c.line.attempts < static_cast<long long>(cfg_.max_attempts)) {
            last_error = r.status_code ? "HTTP " + std::to_string(r.status_code) : r.error_message;
            rec.retry(c.line, t + backoff_ms(c.line.attempts, rep.retry_after_ms), printable(last_error));
            continue;
        }
        r.req_id = aq::random_id("batch_req_");
        r.request_id = rep.request_id.empty() ? aq::random_id("req_") : printable(rep.request_id, 200);
        if (!rec.result(c.line, r, u)) continue;  // another host owns the line now
        delta& d = deltas[c.line.batch_id];
        (success ? d.completed : d.failed) += 1;
        d.usage.input_tokens += u.input_tokens;
        d.usage.output_tokens += u.output_tokens;
        d.usage.total_tokens += u.total_tokens;
        d.usage.cached_tokens += u.cached_tokens;
        d.usage.reasoning_tokens += u.reasoning_tokens;
    }
    for (const auto& [id, d] : deltas) db_.add_counts(sql, id, d.completed, d.failed, d.usage);
    tx.commit();
    return done.size();
}

}  // namespace batches
