// The `batch_requests` table as a queue of lines: one row per input line with its state
// (pending -> running -> done), attempts, lease and recorded result.
//
// - Staging: validation stores a batch's lines in short transactions (a slice each) while the
//   batch is still `validating`; claims only take lines of `in_progress` batches, so the lines
//   become runnable all at once when the batch is activated.
// - Claims are leases (lease_owner, lease_until, claim_seq) of `in_progress` batches only; two
//   hosts never hold the same line (sql::dialect's skip_locked() on PostgreSQL, the single
//   writer on SQLite).
// - Recording is fenced by the line's lease: a reply whose lease was lost (another host owns
//   the line now) is dropped, so each line's result is recorded exactly once.
// - Closing (cancel, expiry) and staging are fenced by the batch's lease.
// - Once a batch has ended and its files are written, its lines are dropped (retention).
//
// Each call is its own transaction; no session crosses this interface.
#pragma once

#include "batch_table.hpp"

#include "sql/pool.hpp"

#include <span>
#include <string>
#include <vector>

namespace batches {

// One input line as stored at validation.
struct line_row {
    long long line_no = 0;
    std::string custom_id, model, body;
};

// A line claimed by this host to send upstream.
struct claimed_line {
    std::string batch_id, endpoint;
    long long expires_at = 0;  // the batch's, Unix seconds: the line must not start after it
    long long line_no = 0;
    std::string custom_id, model, body;
    long long attempts = 0;  // including this one
    long long claim_seq = 0;
};

// A line's recorded result, as the finalizer reads it back.
struct result_row {
    long long line_no = 0;
    std::string custom_id, req_id;
    int status_code = 0;                    // 0: no HTTP answer
    std::string request_id, response_body;  // response_body: JSON text
    std::string error_code, error_message;
};

// Why a line never ran: the code and message of its error line.
struct unrun_reason {
    const char* code;
    const char* message;
};
inline constexpr unrun_reason batch_cancelled{"batch_cancelled", "The batch was cancelled before this request ran."};
inline constexpr unrun_reason batch_expired{"batch_expired", "The batch expired before this request could be run."};

// What became of a claimed line, for record().
struct line_outcome {
    const claimed_line* line = nullptr;
    bool retry = false;          // true: back to pending until next_ms
    long long next_ms = 0;       // retry
    std::string last_error;      // retry
    bool unsent = false;         // retry: the line was never sent; the claim's attempt is given back
    result_row result;           // !retry: the final result (line_no and custom_id are filled in)
    usage_counts usage;          // !retry
    bool success = false;        // !retry: counts as completed, else failed
};

class line_queue {
public:
    explicit line_queue(aq::sql::pool& pool) : pool_(pool) {}

    // ---- validation ----
    // Stores one slice of a batch's lines while `me` holds the batch's lease; false (and
    // nothing stored) when it lost the lease.
    bool stage(const std::string& batch_id, const std::string& me, const std::vector<line_row>& lines);
    // Deletes what an earlier attempt staged, a slice per transaction, while `me` holds the
    // batch's lease; false when it lost the lease.
    bool unstage(const std::string& batch_id, const std::string& me);
    // Deletes every line of an ended batch, a slice per transaction.
    void drop_all(const std::string& batch_id);

    // ---- runner ----
    // Claims up to `n` lines of `b` for `me`, if `b` is in_progress: pending lines whose retry
    // time has come, and running lines whose lease expired (a dead host's). Counts an attempt.
    std::vector<claimed_line> claim(const batch_work& b, int n, const std::string& me, long long claim_seq,
                                    long long now_ms, long long until_ms);
    // Extends the leases of `me` on its running lines; returns how many.
    long long renew(const std::string& me, long long until_ms);
    // Records outcomes of lines `me` claimed, and adds the finished ones to their batches'
    // request_counts and usage, in one transaction. Returns how many were dropped because the
    // lease was lost.
    std::size_t record(const std::string& me, std::span<const line_outcome> outcomes);

    // ---- finalization ----
    // How many lines of a batch are not done, and how many of those run under a live lease.
    struct line_counts {
        long long not_done = 0, live_running = 0;
    };
    line_counts count(const std::string& batch_id, long long now_ms);
    // While `me` holds the batch's lease: marks every line not yet done (and not running under
    // a live lease) as done with the error code (batch_expired / batch_cancelled) and adds them
    // to the failed count. False when the lease was lost.
    bool close_unrun(const std::string& batch_id, const std::string& me, const unrun_reason& why, long long now_ms);
    // Results in input order, a page at a time (line_no > after_line).
    std::vector<result_row> results_page(const std::string& batch_id, long long after_line, int limit, bool success);

private:
    aq::sql::pool& pool_;
};

}  // namespace batches
