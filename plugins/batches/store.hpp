// Durable state of batches: the `batches` table (every field of the Batch object, its owner and
// a lease for the host validating or finalizing it) and `batch_requests` (one row per input line
// with its state, attempts, lease and recorded result). Every query that serves a route filters
// by owner. Timestamps of the API are Unix seconds; lease and retry times are Unix milliseconds.
//
// Nullable API fields are stored NOT NULL with a neutral value ('' or 0) and turned into JSON
// null when the Batch object is built: SOCI 4.0.3 has no std::optional and this keeps every
// query free of indicators.
#pragma once

#include "sql/pool.hpp"

#include <soci/soci.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace batches {

struct usage_counts {
    long long input_tokens = 0, output_tokens = 0, total_tokens = 0;
    long long cached_tokens = 0, reasoning_tokens = 0;
};

struct batch_row {
    std::string id, owner, endpoint, model, input_file_id, completion_window, status;
    std::string errors;          // JSON array text of errors.data, '' for none
    std::string output_file_id, error_file_id, metadata;  // metadata: JSON object text or ''
    long long created_at = 0, in_progress_at = 0, expires_at = 0, finalizing_at = 0,
              completed_at = 0, failed_at = 0, expired_at = 0, cancelling_at = 0, cancelled_at = 0;
    long long total = 0, completed = 0, failed = 0;
    usage_counts usage;
    long long output_expires_after = 0;  // seconds; 0 = config default
};

// One input line as stored at validation.
struct line_row {
    long long line_no = 0;
    std::string custom_id, model, body;
};

// A line claimed by this host to send upstream.
struct claimed_line {
    std::string batch_id, endpoint;
    long long line_no = 0;
    std::string custom_id, model, body;
    long long attempts = 0;  // including this one
    long long claim_seq = 0;
};

// A line's recorded result.
struct result_row {
    long long line_no = 0;
    std::string custom_id, req_id;
    int status_code = 0;                       // 0: no HTTP answer
    std::string request_id, response_body;     // response_body: JSON text
    std::string error_code, error_message;
};

// A batch the runner must act on, and why.
struct batch_work {
    std::string id, owner, status, endpoint, model, input_file_id;
    long long expires_at = 0;
};

class store {
public:
    explicit store(aq::sql::pool& pool) : pool_(pool) {}

    void migrate();
    aq::sql::backend kind() const noexcept { return pool_.kind(); }

    // ---- routes ----
    void insert_batch(const batch_row& b);
    std::optional<batch_row> get_batch(const std::string& owner, const std::string& id);
    // Newest first; `after` is the id of the last item of the previous page.
    std::vector<batch_row> list_batches(const std::string& owner, const std::string& after, int limit);
    long long count_active(const std::string& owner);
    // validating/in_progress/finalizing -> cancelling. Returns the row after the change, the
    // unchanged row when it was already cancelling or terminal, nullopt when absent.
    std::optional<batch_row> cancel(const std::string& owner, const std::string& id, long long now);

    // ---- batch leases (validation and finalization; several hosts share the table) ----
    // Takes the batch's lease if free or expired. True when this host now holds it.
    bool lease_batch(const std::string& id, const std::string& me, long long now_ms, long long until_ms);
    void release_batch(const std::string& id, const std::string& me);

    // Batches in `validating` whose lease is free.
    std::vector<batch_work> validating(long long now_ms, int limit);
    // in_progress batches that can run lines now (not expired), for the fair claim.
    std::vector<batch_work> runnable(long long now_s);
    // Batches that may be ready to finalize: in_progress (done, or past expiry), validating
    // past expiry, cancelling, or finalizing with an expired lease.
    std::vector<batch_work> finalize_candidates(long long now_s, long long now_ms);

    // ---- validation ----
    // Inside one write transaction on `sql`: clear_lines, insert_lines (in slices), then
    // activate, so a batch's lines are all stored or none.
    void clear_lines(soci::session& sql, const std::string& batch_id);
    void insert_lines(soci::session& sql, const std::string& batch_id, const std::vector<line_row>& lines);
    // validating -> in_progress with its total and model (a cancel meanwhile is kept).
    void activate(soci::session& sql, const std::string& batch_id, const std::string& model, long long total,
                  long long now_s);
    void fail_batch(const std::string& id, const std::string& errors_json, long long now_s);
    // A batch whose results cannot be written (the files service refuses them) ends failed.
    void fail_finalize(const std::string& id, const std::string& errors_json, long long now_s);

    // ---- runner ----
    // Claims up to `n` runnable lines of a batch for this host: pending lines whose retry time
    // has come, and running lines whose lease expired (a dead host's). Counts an attempt.
    std::vector<claimed_line> claim(const batch_work& b, int n, const std::string& me, long long claim_seq,
                                    long long now_ms, long long until_ms);
    // Extends this host's leases on its running lines.
    void renew_leases(const std::string& me, long long until_ms);
    // Records results and retries of lines this host claimed, inside the caller's transaction
    // on `sql`, with statements prepared once per group (one round trip per line on PostgreSQL).
    // Each call returns false when the lease was lost (another host owns the line now); the
    // caller then drops that reply, so a line's result is recorded exactly once.
    class recorder {
    public:
        recorder(soci::session& sql, const std::string& me);
        ~recorder();
        bool result(const claimed_line& line, const result_row& r, const usage_counts& u);
        bool retry(const claimed_line& line, long long next_ms, const std::string& last_error);

    private:
        struct statements;
        std::unique_ptr<statements> st_;
    };
    // Adds finished lines to a batch's live request_counts and usage.
    void add_counts(soci::session& sql, const std::string& batch_id, long long completed, long long failed,
                    const usage_counts& u);
    // How many lines of a batch are not done, and how many of those run under a live lease.
    struct line_counts {
        long long not_done = 0, live_running = 0;
    };
    line_counts count_lines(const std::string& batch_id, long long now_ms);

    // ---- finalization ----
    // Marks every line not yet done (and not running under a live lease) as done with the
    // error code (batch_expired / batch_cancelled); adds them to the failed count.
    void close_unrun_lines(const std::string& batch_id, const std::string& code, const std::string& message,
                           long long now_ms);
    // in_progress -> finalizing (a cancel that arrived first is kept).
    void mark_finalizing(const std::string& id, long long now_s);
    // Results in input order, a page at a time (line_no > after).
    std::vector<result_row> results_page(const std::string& batch_id, long long after_line, int limit, bool success);
    // Final state: the files and the terminal status. `completed` becomes `cancelled` when a
    // cancel arrived while finalizing.
    void finish(const std::string& id, const std::string& output_file_id, const std::string& error_file_id,
                const std::string& status, long long now_s);

    aq::sql::pool& pool() noexcept { return pool_; }

private:
    aq::sql::pool& pool_;
};

}  // namespace batches
