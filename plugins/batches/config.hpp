// The batches plugin's config section (`plugins.batches`), validated strictly at init.
//
// Every key has a default except `upstreams`; an unknown key or a wrong type fails init with a
// message naming "plugins.batches.KEY", because a silently ignored typo in a limit is worse than
// a refusal to start.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace batches {

struct upstream_config {
    std::string name;
    std::string base_url;             // "http(s)://host[:port]/.../v1", no trailing slash
    std::string api_key;              // empty: no Authorization header
    // What `models` lists: public names served under the same name ("*": every model), and
    // aliases, public name -> the upstream's own name (an entry {"gpt-4o-mini": "Qwen/..."}).
    // A public name appears once per upstream, in one of the two.
    std::vector<std::string> models;
    std::map<std::string, std::string, std::less<>> aliases;
    unsigned max_concurrency = 64;
    unsigned timeout_seconds = 600;
    // Share of the model's lines relative to the other upstreams serving it (upstream_pool.hpp
    // has the rule); 0: takes no lines (drained).
    unsigned weight = 1;
    // Adaptive concurrency (upstream_pool.hpp): the cap on requests in flight moves between
    // min_concurrency and max_concurrency; a success counts towards raising it only when it
    // answered within latency_target_ms (0: any success counts).
    unsigned min_concurrency = 1;
    unsigned latency_target_ms = 0;
    // Rate limits shared by every host on the database (rate_table.hpp); 0: none (the default;
    // a configured 0 is refused).
    unsigned long long max_requests_per_minute = 0;
    unsigned long long max_tokens_per_minute = 0;

    // The name the upstream knows public `model` by, or nullopt when it does not serve it.
    std::optional<std::string_view> upstream_model(std::string_view model) const;
};

// An endpoint the operator configured for batch events (`plugins.batches.webhooks[i]`). Users
// cannot add one: the gateway never calls a URL a request names.
struct webhook_endpoint {
    std::string url;     // http(s)://host[:port]/path[?query]
    std::string key;     // the secret's bytes ("whsec_" + base64 in config); never logged
    std::set<std::string, std::less<>> owners;  // owner keys ("user:NAME", "team:NAME"); empty: all
    std::set<std::string, std::less<>> events;  // "batch.completed" ...; empty: all four

    bool wants(std::string_view owner, std::string_view event_type) const;
};

struct config {
    std::string database;             // "sqlite:/path" or "postgresql://..." (host-provided)
    std::vector<upstream_config> upstreams;
    unsigned max_attempts = 5;        // upstream tries per line, the first included
    unsigned backoff_initial_ms = 500;
    unsigned backoff_max_ms = 60'000;
    unsigned max_active_batches_per_owner = 100;
    std::uint64_t max_requests_per_batch = 50'000;  // keep equal to plugins.files.max_requests_per_file
    std::uint64_t max_line_bytes = 16ull << 20;      // keep equal to plugins.files.max_line_bytes
    std::uint64_t max_input_bytes = 200ull << 20;
    unsigned poll_interval_ms = 200;  // how often the runner looks for work when idle
    unsigned max_in_flight = 1024;    // upstream requests at once across all upstreams (per host)
    std::int64_t output_expires_after_seconds = 30 * 86400;  // output/error files
    // A dead host's claimed lines and batches are retaken after this. Renewed every third of it
    // by the heartbeat, which does nothing else, so it can be short.
    unsigned lease_seconds = 10;
    unsigned max_retry_after_seconds = 60;  // cap on an upstream's retry-after
    // How long a batch's per-line rows (input bodies, responses) stay after its output and
    // error files are written; 0: dropped at once.
    long long results_retention_seconds = 0;
    // How long an ended batch (completed, failed, expired, cancelled) stays listed.
    long long batch_retention_seconds = 30 * 86400;
    // Database sessions for the routes, the runner and the housekeeper (the heartbeat has one of
    // its own), and the longest any of them waits for a free one before giving up (routes: 503
    // database_unavailable; jobs: try again later).
    unsigned pool_size = 8;
    unsigned session_wait_ms = 5000;
    // Where validation's custom_id set may spill past 1 MiB (the input's ids): beside an SQLite
    // database (same disk), else the temporary directory. Derived from `database`, not a key.
    std::string scratch_dir;
    // Bare owner names, in rows written before owner keys carried their kind, that were teams:
    // the migration to schema 3 makes them "team:NAME", every other name "user:NAME"
    // (sql/legacy_owner.hpp). Give the files plugin the same list.
    std::set<std::string, std::less<>> legacy_team_owners;
    // Batch event deliveries: retried with exponential backoff from webhook_backoff_initial_ms
    // up to webhook_backoff_max_ms between attempts, for webhook_retry_seconds after the event;
    // each attempt waits webhook_timeout_seconds at most for an answer.
    std::vector<webhook_endpoint> webhooks;
    long long webhook_retry_seconds = 24 * 3600;
    unsigned webhook_backoff_initial_ms = 5000;
    unsigned webhook_backoff_max_ms = 3'600'000;
    unsigned webhook_timeout_seconds = 15;
    // What completion_window "24h" means in seconds; shorter only for tests of expiry.
    long long completion_window_seconds = 24 * 3600;
    // Health (upstream_pool.hpp): this many failed attempts in a row (no answer, or 5xx) take
    // an upstream out of rotation for cooldown_initial_ms, doubled at each failed probe up to
    // cooldown_max_ms.
    unsigned failures_before_cooldown = 3;
    unsigned cooldown_initial_ms = 1000;
    unsigned cooldown_max_ms = 60'000;

    // Whether an upstream with a weight above 0 serves `model` (batch creation's model check).
    bool served(std::string_view model) const;
};

// Throws std::invalid_argument naming the offending key.
config parse_config(const boost::json::object& section);

}  // namespace batches
