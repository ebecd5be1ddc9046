#include "metrics.hpp"

namespace aq::files {

files_metrics::files_metrics(const aq::host& host, bool s3) {
    auto uploads = host.counter_family("aqueduct_files_uploads_total", "Uploads, by how they ended.", {"outcome"});
    stored_ = uploads.with({"stored"});
    rejected_ = uploads.with({"rejected"});
    unavailable_ = uploads.with({"unavailable"});
    failed_ = uploads.with({"failed"});
    stored_bytes_ = host.counter("aqueduct_files_stored_bytes_total", "Bytes of the files uploads stored.");
    rejections_ = host.counter_family("aqueduct_files_upload_rejections_total",
                                      "Uploads refused by validation, by reason (error code, else the parameter).",
                                      {"reason"});
    auto runs = host.counter_family("aqueduct_files_purge_runs_total", "Runs of the expired-files purge.", {"outcome"});
    purge_ok_ = runs.with({"ok"});
    purge_unavailable_ = runs.with({"unavailable"});
    purged_ = host.counter("aqueduct_files_purged_total", "Expired files and abandoned writes purged.");
    auto events = host.counter_family("aqueduct_files_upload_objects_total",
                                      "Uploads (the Uploads API's objects), by what happened to them.", {"event"});
    upload_events_[upload_created] = events.with({"created"});
    upload_events_[upload_completed] = events.with({"completed"});
    upload_events_[upload_cancelled] = events.with({"cancelled"});
    parts_ = host.counter("aqueduct_files_upload_parts_total", "Parts of Uploads stored.");
    part_bytes_ = host.counter("aqueduct_files_upload_part_bytes_total", "Bytes of the parts of Uploads stored.");
    if (s3) {
        auto retries = host.counter_family("aqueduct_files_s3_retries_total",
                                           "Requests to S3 retried, by the kind of failure retried.", {"kind"});
        // The kinds the client retries (s3/error.cpp); the others never are.
        for (auto kind : {aq::s3::error_kind::throttled, aq::s3::error_kind::server, aq::s3::error_kind::network,
                          aq::s3::error_kind::rejected})
            s3_retries_[static_cast<std::size_t>(kind)] = retries.with({std::string(aq::s3::to_string(kind))});
    }
}

void files_metrics::rejected(const aq::http_error& e) const {
    if (e.status() >= 500) return failed_.inc();
    rejected_.inc();
    // Rare: the series is looked up (a lock in the host) per refusal. Reasons are a fixed set:
    // the plugin's own codes and parameter names, never client text.
    const std::string& reason = !e.code().empty() ? e.code() : !e.param().empty() ? e.param() : std::string("multipart");
    try {
        rejections_.with({reason}).inc();
    } catch (...) {
        // A refused label value loses one sample, never the answer to the client.
    }
}

void files_metrics::s3_retried(aq::s3::error_kind kind) const {
    const auto k = static_cast<std::size_t>(kind);
    if (k < s3_error_kinds) s3_retries_[k].inc();
}

void files_metrics::purge_run(bool completed, std::size_t purged) const {
    (completed ? purge_ok_ : purge_unavailable_).inc();
    purged_.add(purged);
}

}  // namespace aq::files
