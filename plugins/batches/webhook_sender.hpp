// Delivers the outbox's batch events to the configured endpoints (a job of its own, beside the
// runner and the housekeeper): claims due deliveries, signs each attempt (Standard Webhooks:
// webhook-id is the event id, the same on every attempt; webhook-timestamp is the attempt's),
// POSTs them through the upstream client (https verified as for upstreams), records each
// answer and logs it. Ended rows are purged after batch_retention_seconds.
#pragma once

#include "config.hpp"
#include "upstream.hpp"
#include "webhook_outbox.hpp"

#include <aqueduct/plugin.hpp>

#include <string>

namespace batches {

class webhook_sender {
public:
    webhook_sender(aq::host host, const config& cfg, webhook_outbox& outbox, std::string me);

    // One pass: what is due now, sent and recorded. Runs on the job's thread.
    void run();

private:
    std::vector<upstream_config> as_upstreams() const;
    long long backoff_ms(long long attempts) const;

    aq::host host_;
    const config& cfg_;
    webhook_outbox& outbox_;
    std::string me_;
    upstream_client client_;  // endpoint i of cfg.webhooks is upstream i
    long long last_purge_ms_ = 0;
};

}  // namespace batches
