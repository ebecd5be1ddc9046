// A fake OpenAI-compatible upstream for the batches tests and benchmark.
//
// Serves POST .../chat/completions, /completions, /embeddings and /responses on 127.0.0.1 (port
// 0 = any free port) with a deterministic body, so a test can predict the output file byte for
// byte. Each request is keyed by the body's "user" field (the tests put the custom_id there),
// else the first message's content, else "prompt"/"input". Behaviour per key or at random:
// latency, an HTTP status (429 with retry-after, 5xx, 4xx) for the first N requests, hang,
// close mid-response, garbage (200 with a non-JSON body), garbage_http (not HTTP at all). And
// overload, as a server with a fixed number of slots: a request that finds every slot taken is
// answered 503 at once, and latency grows with the number of requests being served.
//
// For pools of several instances: a name that goes into each answer's x-request-id
// ("req_NAME_KEY_N"), so an output line shows which instance answered it; a hold that keeps
// every request waiting (counted, unanswered) until released, so a test can see where lines
// went before any of them finishes; and the raw request bodies per key.
//
// And a rate limit, as a provider's: a request arriving when `max` requests were accepted
// within the last window is answered 429 with a retry-after (not counted as accepted).
//
// Control over HTTP too (for the standalone program): GET /_counts -> {"total", "counts":
// {key: n}, "max_active", "overload_refusals", "rate_refusals"}; POST /_config with {"latency_ms",
// "error_rate", "rules": {key: rule}, "overload_max_active", "latency_per_active_ms", "rate_max",
// "rate_window_ms"}; POST
// /_reset clears the counts.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace aqt {

struct fake_rule {
    // "status": answer `status` (with retry-after if retry_after_s >= 0); "hang": never answer;
    // "close": send half a response and close; "garbage": 200 with a non-JSON body;
    // "garbage_http": bytes that are not HTTP.
    std::string mode = "status";
    int status = 500;
    int times = -1;            // apply to the first `times` requests of the key; -1: always
    double retry_after_s = -1;
    std::string retry_after_text;  // when not empty: the retry-after header verbatim

    fake_rule(std::string mode_ = "status", int status_ = 500, int times_ = -1, double retry_after_s_ = -1,
              std::string retry_after_text_ = {})
        : mode(std::move(mode_)), status(status_), times(times_), retry_after_s(retry_after_s_),
          retry_after_text(std::move(retry_after_text_)) {}
};

class fake_upstream {
public:
    explicit fake_upstream(unsigned short port = 0);
    // Serves HTTPS with this certificate chain and key (PEM) instead of HTTP.
    fake_upstream(unsigned short port, const std::string& cert_pem, const std::string& key_pem);
    ~fake_upstream();
    fake_upstream(const fake_upstream&) = delete;
    fake_upstream& operator=(const fake_upstream&) = delete;

    // Stops serving as a dead server does: connections close, new ones are refused. The counts
    // stay readable.
    void stop();

    unsigned short port() const noexcept;
    // "http(s)://127.0.0.1:PORT/fake-N/v1": N random per instance, so that requests meant for an
    // earlier instance on the same port (another test's) are refused, not counted.
    std::string base_url() const;
    // Serves under "/v1" itself (the standalone program, whose users build the URL from the port).
    void clear_path_prefix();

    void set_latency(std::chrono::milliseconds latency);
    void set_error_rate(double rate, int status = 500);  // random failures, 0..1
    // Overload: a request arriving while `max_active` are being served is answered 503 at once
    // (not counted in active(); 0: no limit), and each request served takes the latency plus
    // `per_active` x the number being served when it arrived (itself included).
    void set_overload(int max_active, std::chrono::milliseconds per_active);
    // Requests answered 503 for overload so far.
    long long overload_refusals() const;
    // The rate limit above: at most `max_requests` accepted within any `window` (0: no limit);
    // a refusal is a 429 with retry-after `retry_after_s` seconds.
    void set_rate_limit(int max_requests, std::chrono::milliseconds window, double retry_after_s = 1);
    long long rate_refusals() const;
    // The most requests (accepted or not) that arrived within any `window`, from arrival_times().
    int max_arrivals_within(std::chrono::milliseconds window) const;
    void set_rule(const std::string& key, fake_rule rule);
    void clear_rules();
    // When set, a request without "Authorization: Bearer <key>" gets 401.
    void require_api_key(const std::string& key);
    void reset_counts();
    // Goes into x-request-id: "req_NAME_KEY_N" instead of "req_KEY_N" (empty: no name).
    void set_name(const std::string& name);
    // true: requests wait after being counted until set_held(false) (or the server stops).
    void set_held(bool held);
    // Keeps each request's raw body (off by default: the benchmark sends many).
    void keep_bodies(bool keep);
    // The raw bodies received with `key`, in arrival order (keep_bodies(true) first).
    std::vector<std::string> bodies(const std::string& key) const;

    // Requests received per key (counted when the request is read, before any answer).
    std::map<std::string, int> counts() const;
    int count(const std::string& key) const;
    // The x-request-id header of each request with `key`, in arrival order ("" when absent).
    std::vector<std::string> request_ids(const std::string& key) const;
    long long total() const;
    // Keys in the order their requests arrived.
    std::vector<std::string> order() const;
    // Seconds since the server started at which each request of order() arrived.
    std::vector<double> arrival_times() const;
    // Seconds since the server started, on the clock of arrival_times().
    double now() const;
    // Requests being served right now, and the most at once so far.
    int active() const;
    int max_active() const;

    // The body this fake answers for a successful request with `key` and `model` (chat).
    static std::string success_body(const std::string& key, const std::string& model);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace aqt
