#include "housekeeper.hpp"

#include "finalizer.hpp"
#include "retention.hpp"
#include "validation.hpp"
#include "wall_clock.hpp"

namespace batches {

namespace {

// Retention is measured in seconds to days: a pass a second is plenty, and costs two indexed
// queries when there is nothing to purge.
constexpr long long purge_every_ms = 1000;

std::string short_what(const std::exception& e) {
    std::string what = e.what();
    if (what.size() > 300) what.resize(300);  // SOCI may quote whole parameters
    return what;
}

}  // namespace

void housekeeper::run() {
    long long t = now_ms();
    const long long lease_ms = static_cast<long long>(cfg_.lease_seconds) * 1000;
    try {
        for (const auto& b : batches_.validating(t, 4)) {
            if (host_.stopping()) return;
            long long now = now_ms();
            if (!batches_.lease(b.id, hb_.me(), now, now + lease_ms)) continue;
            heartbeat::batch_hold hold(hb_, b.id);
            try {
                validate_batch(cfg_, batches_, lines_, files_, b, hb_.me());
            } catch (const std::exception& e) {
                host_.warn("batches: validating " + b.id + " failed, will retry: " + short_what(e));
            }
        }
    } catch (const std::exception& e) {
        host_.warn("batches: looking for batches to validate failed, will retry: " + short_what(e));
    }
    try {
        finalize_ready(host_, cfg_, batches_, lines_, files_, hb_);
    } catch (const std::exception& e) {
        host_.warn("batches: finalizing failed, will retry: " + short_what(e));
    }
    t = now_ms();
    if (t - last_purge_ms_ >= purge_every_ms) {
        last_purge_ms_ = t;
        try {
            purge_retained(cfg_, batches_, lines_, t / 1000);
        } catch (const std::exception& e) {
            host_.warn("batches: purging ended batches failed, will retry: " + short_what(e));
        }
    }
}

}  // namespace batches
