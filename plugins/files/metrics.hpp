// The files plugin's metrics (registered at init; updates are lock-free in the host):
//   aqueduct_files_uploads_total{outcome="stored|rejected|unavailable|failed"}
//   aqueduct_files_stored_bytes_total          bytes of the files uploads stored
//   aqueduct_files_upload_rejections_total{reason}  validation failures: the error's code
//       (quota_exceeded, unsupported_media_type), else the parameter it names (file, purpose,
//       expires_after[seconds], ...), else "multipart" (a malformed body)
//   aqueduct_files_purge_runs_total{outcome="ok|unavailable"}, aqueduct_files_purged_total (expired
//       files and abandoned writes)
//   aqueduct_files_upload_objects_total{event="created|completed|cancelled"}: Uploads (the
//       Uploads API's objects) created, completed into a file, cancelled
//   aqueduct_files_upload_parts_total, aqueduct_files_upload_part_bytes_total: parts stored
//   aqueduct_files_s3_retries_total{kind="throttled|server|network|rejected"}, with the s3 store
//       only: requests to S3 retried after a failure of that kind (s3/error.hpp: a 503 SlowDown
//       or a 429 is "throttled", another 5xx "server", no answer "network", a 400
//       RequestTimeout "rejected"). The four series are there from the start, at 0.
// Kept apart from the handlers: routes.cpp and expiry.cpp only wrap their work in these calls.
#pragma once

#include "s3/error.hpp"
#include "sql/unavailable.hpp"

#include <aqueduct/plugin.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace aq::files {

class files_metrics {
public:
    // `s3`: whether the s3 store is configured (its retries are counted then).
    files_metrics(const aq::host& host, bool s3);

    // Runs an upload (fn returns the bytes stored) and counts how it ended; exceptions pass.
    template <class Fn>
    void count_upload(Fn&& fn) const {
        try {
            stored_bytes_.add(fn());
            stored_.inc();
        } catch (const aq::http_error& e) {
            rejected(e);
            throw;
        } catch (const sql::unavailable&) {
            unavailable_.inc();
            throw;
        } catch (...) {
            failed_.inc();
            throw;
        }
    }

    void purge_run(bool completed, std::size_t purged) const;

    enum upload_event_kind { upload_created, upload_completed, upload_cancelled };
    void upload_event(upload_event_kind event) const { upload_events_[event].inc(); }
    void part_stored(std::uint64_t bytes) const {
        parts_.inc();
        part_bytes_.add(bytes);
    }
    void s3_retried(aq::s3::error_kind kind) const;

private:
    void rejected(const aq::http_error& e) const;

    aq::counter stored_, rejected_, unavailable_, failed_, stored_bytes_;
    aq::counter_family rejections_;
    aq::counter purge_ok_, purge_unavailable_, purged_;
    std::array<aq::counter, 3> upload_events_;  // by upload_event_kind
    aq::counter parts_, part_bytes_;
    static constexpr std::size_t s3_error_kinds = static_cast<std::size_t>(aq::s3::error_kind::protocol) + 1;
    std::array<aq::counter, s3_error_kinds> s3_retries_;  // by error_kind; unset without the s3 store
};

}  // namespace aq::files
