// The `batches` table: one row per batch holding every field of the Batch object, its owner, and
// the lease of the host that validates or finalizes it. Every query that serves a route filters
// by owner. API timestamps are Unix seconds; lease times are Unix milliseconds.
//
// Leases are fenced: every write that a lease covers (activation, failure, finalization) checks
// in its own statement that the writing host still holds the lease, and reports false when it
// does not, so a host that stalled past its lease cannot overwrite the work of the host that took
// the batch over.
//
// Nullable API fields are stored NOT NULL with a neutral value ('' or 0) and turned into JSON
// null when the Batch object is built: SOCI 4.0.3 has no std::optional and this keeps every
// query free of indicators.
#pragma once

#include "config.hpp"

#include "sql/pool.hpp"

#include <optional>
#include <utility>
#include <string>
#include <vector>

namespace batches {

struct usage_counts {
    long long input_tokens = 0, output_tokens = 0, total_tokens = 0;
    long long cached_tokens = 0, reasoning_tokens = 0;

    usage_counts& operator+=(const usage_counts& o) {
        input_tokens += o.input_tokens;
        output_tokens += o.output_tokens;
        total_tokens += o.total_tokens;
        cached_tokens += o.cached_tokens;
        reasoning_tokens += o.reasoning_tokens;
        return *this;
    }
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

// A batch the runner or the housekeeper must act on.
struct batch_work {
    std::string id, owner, status, endpoint, model, input_file_id;
    long long expires_at = 0;
};

class batch_table {
public:
    // `webhooks`: the endpoints a terminal status enqueues an event for (webhook_outbox), in
    // the transaction that writes the status.
    explicit batch_table(aq::sql::pool& pool, std::vector<webhook_endpoint> webhooks = {})
        : pool_(pool), webhooks_(std::move(webhooks)) {}

    // ---- routes ----
    void insert(const batch_row& b);
    std::optional<batch_row> get(const std::string& owner, const std::string& id);
    // Newest first; `after` is the id of the last item of the previous page.
    std::vector<batch_row> list(const std::string& owner, const std::string& after, int limit);
    long long count_active(const std::string& owner);
    // validating/in_progress/finalizing -> cancelling. Returns the row after the change, the
    // unchanged row when it was already cancelling or terminal, nullopt when absent.
    std::optional<batch_row> cancel(const std::string& owner, const std::string& id, long long now_s);

    // ---- leases (several hosts share the table) ----
    // Takes the batch's lease if free, expired or already ours. True when `me` now holds it.
    bool lease(const std::string& id, const std::string& me, long long now_ms, long long until_ms);
    // Extends a lease `me` holds; false when it was lost (taken over after it expired).
    bool renew(const std::string& id, const std::string& me, long long until_ms);
    void release(const std::string& id, const std::string& me);

    // ---- what there is to do ----
    // Batches in `validating` whose lease is free.
    std::vector<batch_work> validating(long long now_ms, int limit);
    // in_progress batches within their window, ordered by owner for the fair claim.
    std::vector<batch_work> runnable(long long now_s);
    // Batches that may be ready to finalize: in_progress (done, or past expiry), validating past
    // expiry, cancelling, or finalizing with an expired lease.
    std::vector<batch_work> finalize_candidates(long long now_s, long long now_ms);
    // Ids of batches being cancelled: no line of theirs may start.
    std::vector<std::string> cancelling();

    // ---- transitions under the lease of `me`; false when `me` no longer holds it ----
    // validating -> in_progress with its total and model (a cancel meanwhile is kept).
    bool activate(const std::string& id, const std::string& me, const std::string& model, long long total,
                  long long now_s);
    // validating (or cancelling during validation) -> failed: its input was bad.
    bool fail_validation(const std::string& id, const std::string& me, const std::string& errors_json,
                         long long now_s);
    // A batch whose results cannot be written (the files service refuses them) ends failed.
    bool fail_finalization(const std::string& id, const std::string& me, const std::string& errors_json,
                           long long now_s);
    // in_progress -> finalizing (a cancel that arrived first is kept).
    bool mark_finalizing(const std::string& id, const std::string& me, long long now_s);
    // The terminal state with its files. `completed` becomes `cancelled` when a cancel arrived
    // while finalizing. Releases the lease.
    bool finish(const std::string& id, const std::string& me, const std::string& output_file_id,
                const std::string& error_file_id, const std::string& status, long long now_s);

    // ---- retention ----
    // Ended batches (terminal since ended_at) whose lines are still stored, ended at or before
    // `cutoff_s`, oldest first.
    std::vector<std::string> ended_with_lines(long long cutoff_s, int limit);
    void mark_lines_purged(const std::string& id);
    // Deletes up to `limit` ended batches (ended at or before `cutoff_s`) whose lines are gone;
    // returns how many.
    long long purge_ended(long long cutoff_s, int limit);

private:
    // Runs `update` (a terminal transition) in a write transaction; when it changed the batch,
    // enqueues the batch's event there too. True when it changed the batch.
    bool fail(const std::string& id, const std::string& me, const std::string& errors_json, long long now_s,
              const char* from);
    template <class Update>
    bool end_batch(const std::string& id, long long now_s, Update update);

    aq::sql::pool& pool_;
    std::vector<webhook_endpoint> webhooks_;
};

}  // namespace batches
