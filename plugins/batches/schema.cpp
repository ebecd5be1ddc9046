#include "schema.hpp"

#include "sql/migrations.hpp"

#include <string>
#include <vector>

namespace batches {

namespace {

// The same SQL serves both backends: TEXT and BIGINT mean the same to SQLite and PostgreSQL.
const std::vector<std::string> schema_v1 = {
    "CREATE TABLE batches ("
    " id TEXT PRIMARY KEY, owner TEXT NOT NULL, endpoint TEXT NOT NULL, model TEXT NOT NULL DEFAULT '',"
    " input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL, status TEXT NOT NULL,"
    " errors TEXT NOT NULL DEFAULT '', output_file_id TEXT NOT NULL DEFAULT '',"
    " error_file_id TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL, in_progress_at BIGINT NOT NULL DEFAULT 0, expires_at BIGINT NOT NULL,"
    " finalizing_at BIGINT NOT NULL DEFAULT 0, completed_at BIGINT NOT NULL DEFAULT 0,"
    " failed_at BIGINT NOT NULL DEFAULT 0, expired_at BIGINT NOT NULL DEFAULT 0,"
    " cancelling_at BIGINT NOT NULL DEFAULT 0, cancelled_at BIGINT NOT NULL DEFAULT 0,"
    " total BIGINT NOT NULL DEFAULT 0, completed BIGINT NOT NULL DEFAULT 0, failed BIGINT NOT NULL DEFAULT 0,"
    " input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,"
    " total_tokens BIGINT NOT NULL DEFAULT 0, cached_tokens BIGINT NOT NULL DEFAULT 0,"
    " reasoning_tokens BIGINT NOT NULL DEFAULT 0, output_expires_after BIGINT NOT NULL DEFAULT 0,"
    " lease_owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX batches_owner_created ON batches (owner, created_at, id)",
    "CREATE INDEX batches_status ON batches (status)",
    "CREATE TABLE batch_requests ("
    " batch_id TEXT NOT NULL, line_no BIGINT NOT NULL, custom_id TEXT NOT NULL, model TEXT NOT NULL,"
    " body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts BIGINT NOT NULL DEFAULT 0,"
    " next_attempt_at BIGINT NOT NULL DEFAULT 0, lease_owner TEXT NOT NULL DEFAULT '',"
    " lease_until BIGINT NOT NULL DEFAULT 0, claim_seq BIGINT NOT NULL DEFAULT 0,"
    " req_id TEXT NOT NULL DEFAULT '', status_code INTEGER NOT NULL DEFAULT 0,"
    " request_id TEXT NOT NULL DEFAULT '', response_body TEXT NOT NULL DEFAULT '',"
    " error_code TEXT NOT NULL DEFAULT '', error_message TEXT NOT NULL DEFAULT '',"
    " input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,"
    " total_tokens BIGINT NOT NULL DEFAULT 0, cached_tokens BIGINT NOT NULL DEFAULT 0,"
    " reasoning_tokens BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (batch_id, line_no))",
    "CREATE INDEX batch_requests_state ON batch_requests (batch_id, state, next_attempt_at)",
    "CREATE INDEX batch_requests_lease ON batch_requests (lease_owner, state)",
};

// Retention: when a batch ended, and whether its lines have been dropped. Batches that ended
// before this version get their end time from the terminal timestamp their status implies, and
// their lines are dropped by the next purge like any other.
const std::vector<std::string> schema_v2 = {
    "ALTER TABLE batches ADD COLUMN ended_at BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE batches ADD COLUMN lines_purged BIGINT NOT NULL DEFAULT 0",
    "UPDATE batches SET ended_at = CASE status WHEN 'completed' THEN completed_at WHEN 'failed' THEN failed_at"
    " WHEN 'expired' THEN expired_at WHEN 'cancelled' THEN cancelled_at ELSE 0 END",
    "CREATE INDEX batches_ended ON batches (lines_purged, ended_at)",
};

// The work queue's index: claims, cancels and counts read one (batch, state) range in line
// order, with next_attempt_at at hand, and never walk the lines already done (whose rows, on
// SQLite, hold the body before `state`, in overflow pages). It replaces (batch_id, state,
// next_attempt_at), whose order served no query.
const std::vector<std::string> schema_v4 = {
    "CREATE INDEX batch_requests_queue ON batch_requests (batch_id, state, line_no, next_attempt_at)",
    "DROP INDEX batch_requests_state",
};

// The outbox of batch events (webhook_outbox.hpp): one row per event and endpoint URL. Times
// in milliseconds except created_at (the event's, Unix seconds).
const std::vector<std::string> schema_v5 = {
    "CREATE TABLE batch_webhooks ("
    " event_id TEXT NOT NULL, url TEXT NOT NULL, batch_id TEXT NOT NULL, owner TEXT NOT NULL,"
    " type TEXT NOT NULL, created_at BIGINT NOT NULL, body TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'pending', attempts BIGINT NOT NULL DEFAULT 0,"
    " next_attempt_at BIGINT NOT NULL DEFAULT 0, lease_owner TEXT NOT NULL DEFAULT '',"
    " lease_until BIGINT NOT NULL DEFAULT 0, last_status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '', ended_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (event_id, url))",
    "CREATE INDEX batch_webhooks_due ON batch_webhooks (state, next_attempt_at)",
    "CREATE INDEX batch_webhooks_ended ON batch_webhooks (state, ended_at)",
};

// The rate budgets and 429 pauses every host shares (rate_table.hpp): one row per upstream
// name, bucket levels in thousandths, times in milliseconds.
const std::vector<std::string> schema_v6 = {
    "CREATE TABLE batch_upstream_limits ("
    " upstream TEXT PRIMARY KEY, requests_milli BIGINT NOT NULL DEFAULT 0,"
    " tokens_milli BIGINT NOT NULL DEFAULT 0, refilled_at BIGINT NOT NULL DEFAULT 0,"
    " paused_until BIGINT NOT NULL DEFAULT 0)",
};

}  // namespace

std::vector<aq::sql::migration> schema_migrations(const aq::sql::name_set& legacy_teams,
                                                 aq::sql::owner_rewrite& rewritten) {
    return {
        {1, schema_v1, schema_v1},
        {2, schema_v2, schema_v2},
        // Owner keys carry their kind: "alice" -> "user:alice", a listed team -> "team:NAME", by
        // the same rule as the files plugin's migration, so a batch and its files stay together.
        {3, {}, {}, [&legacy_teams, &rewritten](soci::session& s, aq::sql::backend) {
             rewritten = aq::sql::rewrite_legacy_owners(s, "batches", "owner", legacy_teams);
         }},
        {4, schema_v4, schema_v4},
        {5, schema_v5, schema_v5},
        {6, schema_v6, schema_v6},
    };
}

aq::sql::owner_rewrite migrate_schema(aq::sql::pool& pool, const aq::sql::name_set& legacy_teams) {
    aq::sql::owner_rewrite rewritten;
    auto migrations = schema_migrations(legacy_teams, rewritten);
    auto lease = pool.lease();
    aq::sql::migrate(*lease, pool.kind(), "batches", migrations);
    return rewritten;
}

}  // namespace batches
