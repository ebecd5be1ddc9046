#include "webhook_sender.hpp"

#include "wall_clock.hpp"
#include "webhook_signature.hpp"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

namespace batches {

namespace {

// Deliveries per pass; each endpoint takes at most max_parallel of them at once.
constexpr int deliveries_per_pass = 32;
constexpr unsigned max_parallel = 8;
constexpr long long purge_every_ms = 60'000;

// A URL as the log shows it: without its query, which may carry a token.
std::string loggable(const std::string& url) { return url.substr(0, url.find('?')); }

}  // namespace

webhook_sender::webhook_sender(aq::host host, const config& cfg, webhook_outbox& outbox, std::string me)
    : host_(host), cfg_(cfg), outbox_(outbox), me_(std::move(me)), client_(as_upstreams()) {}

std::vector<upstream_config> webhook_sender::as_upstreams() const {
    std::vector<upstream_config> out;
    for (const auto& w : cfg_.webhooks) {
        upstream_config u;
        u.name = loggable(w.url);
        u.base_url = w.url;  // the client POSTs to base_url + "" (its path and query)
        u.models = {"*"};
        u.max_concurrency = max_parallel;
        u.timeout_seconds = cfg_.webhook_timeout_seconds;
        out.push_back(std::move(u));
    }
    return out;
}

long long webhook_sender::backoff_ms(long long attempts) const {
    long long d = cfg_.webhook_backoff_initial_ms;
    for (long long i = 1; i < attempts && d < cfg_.webhook_backoff_max_ms; ++i) d *= 2;
    return std::min<long long>(d, cfg_.webhook_backoff_max_ms);
}

void webhook_sender::run() {
    long long t = now_ms();
    if (t - last_purge_ms_ >= purge_every_ms) {
        last_purge_ms_ = t;
        try {
            outbox_.purge(t - cfg_.batch_retention_seconds * 1000, 1000);
        } catch (const std::exception& e) {
            host_.warn(std::string("batches: purging delivered webhooks failed, will retry: ") + e.what());
        }
    }
    // The lease outlasts an attempt's deadline, so no other host sends a delivery still in flight.
    const long long lease_ms = (static_cast<long long>(cfg_.webhook_timeout_seconds) + cfg_.lease_seconds) * 1000;
    std::vector<webhook_delivery> due = outbox_.claim(me_, deliveries_per_pass, t, t + lease_ms);
    if (due.empty()) return;

    // Shared with the client's callbacks, which may outlive this pass when the host stops.
    struct answers {
        std::mutex mu;
        std::condition_variable answered;
        std::vector<std::optional<upstream_reply>> replies;
        std::size_t pending = 0;
    };
    auto got = std::make_shared<answers>();
    got->replies.resize(due.size());
    for (std::size_t i = 0; i < due.size(); ++i) {
        const webhook_delivery& d = due[i];
        auto at = std::find_if(cfg_.webhooks.begin(), cfg_.webhooks.end(), [&](const auto& w) { return w.url == d.url; });
        if (at == cfg_.webhooks.end()) {
            // Configured when the event happened, removed since: nobody to send it to.
            outbox_.give_up(d, me_, 0, "the endpoint is no longer configured", now_ms());
            host_.warn("batches: webhook " + d.event_id + " (" + d.type + ", " + d.batch_id + ") to " + loggable(d.url) +
                       " dropped: the endpoint is no longer configured");
            continue;
        }
        const long long timestamp = now_s();
        std::vector<std::pair<std::string, std::string>> headers{
            {"webhook-id", d.event_id},
            {"webhook-timestamp", std::to_string(timestamp)},
            {"webhook-signature", webhook_signature(at->key, d.event_id, timestamp, d.body)}};
        {
            std::lock_guard lock(got->mu);
            ++got->pending;
        }
        client_.send(static_cast<std::size_t>(at - cfg_.webhooks.begin()), "", d.body, std::move(headers), nullptr,
                     [got, i](upstream_reply r) {
                         std::lock_guard lock(got->mu);
                         got->replies[i] = std::move(r);
                         --got->pending;
                         got->answered.notify_one();
                     });
    }
    {
        // Every attempt ends within webhook_timeout_seconds (the client's deadline). A host
        // shutting down stops waiting: the leases lapse and the deliveries are sent again.
        std::unique_lock lock(got->mu);
        while (got->pending > 0)
            if (!got->answered.wait_for(lock, std::chrono::milliseconds(100), [&] { return got->pending == 0; }) &&
                host_.stopping())
                return;
    }
    for (std::size_t i = 0; i < due.size(); ++i) {
        if (!got->replies[i]) continue;
        const webhook_delivery& d = due[i];
        const upstream_reply& r = *got->replies[i];
        const std::string what = "batches: webhook " + d.event_id + " (" + d.type + ", " + d.batch_id + ") to " +
                                 loggable(d.url) + ", attempt " + std::to_string(d.attempts) + ": ";
        const long long now = now_ms();
        try {
            if (r.status >= 200 && r.status <= 299) {
                if (outbox_.delivered(d, me_, r.status, now)) host_.info(what + std::to_string(r.status) + ", delivered");
                continue;
            }
            std::string error = r.status > 0 ? "HTTP " + std::to_string(r.status) : r.error_message;
            const long long next = now + backoff_ms(d.attempts);
            if (next > d.created_at * 1000 + cfg_.webhook_retry_seconds * 1000) {
                if (outbox_.give_up(d, me_, r.status, error, now))
                    host_.warn(what + error + "; gave up (webhook_retry_seconds have passed since the event)");
            } else if (outbox_.retry_at(d, me_, r.status, error, next)) {
                host_.warn(what + error + "; next attempt in " + std::to_string((next - now + 999) / 1000) + " s");
            }
        } catch (const std::exception& e) {
            // The database is away: the lease lapses and the delivery is attempted again.
            host_.warn(what + "could not record the answer, will retry: " + e.what());
        }
    }
}

}  // namespace batches
