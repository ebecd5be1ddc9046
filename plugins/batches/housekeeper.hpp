// The housekeeping job: validates batches in `validating`, finalizes finished, expired and
// cancelled ones, and enforces retention.
//
// A job of its own, apart from the runner: validating a 200 MiB input or writing a large output
// file takes a while, and meanwhile the runner keeps sending lines and recording results. The
// leases it takes are kept alive by the heartbeat, not by this job.
#pragma once

#include "batch_table.hpp"
#include "config.hpp"
#include "heartbeat.hpp"
#include "line_queue.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

namespace batches {

class housekeeper {
public:
    housekeeper(aq::host host, const config& cfg, batch_table& batches, line_queue& lines, const aq_files_v1& files,
                heartbeat& hb)
        : host_(host), cfg_(cfg), batches_(batches), lines_(lines), files_(files), hb_(hb) {}

    // The job body. Thread: the scheduler's (never two at once).
    void run();

private:
    aq::host host_;
    const config& cfg_;
    batch_table& batches_;
    line_queue& lines_;
    const aq_files_v1& files_;
    heartbeat& hb_;
    long long last_purge_ms_ = 0;
};

}  // namespace batches
