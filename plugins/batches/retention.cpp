#include "retention.hpp"

namespace batches {

namespace {

// Batches per pass; a pass runs every second at most, so this bounds how long one takes.
constexpr int batches_per_pass = 20;

}  // namespace

long long purge_retained(const config& cfg, batch_table& batches, line_queue& lines, long long now_s) {
    long long done = 0;
    for (const auto& id : batches.ended_with_lines(now_s - cfg.results_retention_seconds, batches_per_pass)) {
        lines.drop_all(id);
        batches.mark_lines_purged(id);
        ++done;
    }
    // results_retention_seconds <= batch_retention_seconds (config), so a batch old enough to be
    // deleted has had its lines dropped by the loop above.
    done += batches.purge_ended(now_s - cfg.batch_retention_seconds, batches_per_pass);
    return done;
}

}  // namespace batches
