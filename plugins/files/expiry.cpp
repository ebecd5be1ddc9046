#include "expiry.hpp"

#include "sql/unavailable.hpp"

namespace aq::files {

void register_expiry(aq::host& host, const config& cfg, store& files, uploads& ups, const files_metrics& metrics) {
    const std::uint32_t interval_ms = cfg.expiry_interval_seconds * 1000;
    // Jitter spreads several hosts' runs apart.
    host.job("purge-expired-files", interval_ms, interval_ms / 10, [host, &cfg, &files, &ups, &metrics] {
        std::size_t total = 0;
        bool completed = true;
        try {
            while (!host.stopping()) {
                std::size_t n = files.purge_expired(cfg.expiry_batch_size);
                total += n;
                if (n < cfg.expiry_batch_size) break;
            }
            while (!host.stopping() && ups.purge(cfg.expiry_batch_size) == cfg.expiry_batch_size) {
            }
        } catch (const sql::unavailable&) {
            // The pool logged that the database is gone; the next run tries again.
            completed = false;
        }
        metrics.purge_run(completed, total);
        if (total) host.info("purged " + std::to_string(total) + " expired file(s) and abandoned write(s)");
        try {
            if (std::size_t aborted = files.sweep_uploads())
                host.info("aborted " + std::to_string(aborted) + " abandoned S3 multipart upload(s)");
        } catch (const std::exception& e) {
            host.warn(std::string("files: sweeping S3 multipart uploads failed: ") + e.what());
        }
    });
}

}  // namespace aq::files
