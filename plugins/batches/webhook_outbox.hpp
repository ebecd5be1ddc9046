// The outbox of batch events (table batch_webhooks): one row per event and configured endpoint,
// written in the same transaction as the batch's terminal status (batch_table), so an event is
// never lost to a crash between the two, and never sent for a status that was rolled back.
//
// Delivery is at least once. A host claims due rows under a lease (like batch lines), sends
// them, and records the answer: delivered on 2xx; otherwise the next attempt after an
// exponential backoff, or failed once webhook_retry_seconds have passed since the event. Hosts
// sharing one database never send a row at the same time; a host that dies mid-delivery leaves
// its rows to another after the lease.
#pragma once

#include "config.hpp"

#include "sql/pool.hpp"

#include <string>
#include <vector>

namespace soci {
class session;
}

namespace batches {

struct webhook_delivery {
    std::string event_id, url, batch_id, type, body;
    long long created_at = 0;  // Unix seconds, the event's
    long long attempts = 0;    // this one included
};

class webhook_outbox {
public:
    explicit webhook_outbox(aq::sql::pool& pool) : pool_(pool) {}

    // In the caller's transaction, right after the batch reached `status` (completed, failed,
    // expired, cancelled): one pending delivery for every endpoint that wants this owner's event.
    static void enqueue(soci::session& sql, const std::vector<webhook_endpoint>& endpoints, const std::string& owner,
                        const std::string& batch_id, const std::string& status, long long now_s);

    // Takes up to `n` due deliveries for `me` until `until_ms`, counting the attempt.
    std::vector<webhook_delivery> claim(const std::string& me, int n, long long now_ms, long long until_ms);
    // Outcomes of a claimed delivery; false when `me` no longer held it (nothing changed).
    bool delivered(const webhook_delivery& d, const std::string& me, int status, long long now_ms);
    bool retry_at(const webhook_delivery& d, const std::string& me, int status, const std::string& error,
                  long long next_ms);
    bool give_up(const webhook_delivery& d, const std::string& me, int status, const std::string& error,
                 long long now_ms);
    // Deletes delivered and failed rows that ended at or before `cutoff_ms`, a slice at a time.
    long long purge(long long cutoff_ms, int limit);

private:
    aq::sql::pool& pool_;
};

}  // namespace batches
