#include "finalizer.hpp"

#include "files_client.hpp"

#include <boost/json.hpp>

#include <chrono>

namespace batches {

namespace json = boost::json;

namespace {

constexpr int page_rows = 1000;

long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Writes one file of results (successes or failures); returns its id, '' when there were none.
std::string write_results(store& db, const aq_files_v1& files, const batch_row& b, bool success,
                          std::int64_t expires_after) {
    std::unique_ptr<file_writer> out;
    long long after = 0;
    std::string buf;
    for (;;) {
        auto rows = db.results_page(b.id, after, page_rows, success);
        if (rows.empty()) break;
        if (!out)
            out = std::make_unique<file_writer>(files, b.owner, b.id + (success ? "_output.jsonl" : "_error.jsonl"),
                                                "batch_output", expires_after);
        buf.clear();
        for (const auto& r : rows) buf += result_line(r);
        out->write(buf);
        after = rows.back().line_no;
    }
    return out ? out->commit() : std::string();
}

}  // namespace

std::string result_line(const result_row& r) {
    std::string line = "{\"id\":" + json::serialize(json::string(r.req_id)) +
                       ",\"custom_id\":" + json::serialize(json::string(r.custom_id)) + ",\"response\":";
    if (r.status_code > 0) {
        line += "{\"status_code\":" + std::to_string(r.status_code) +
                ",\"request_id\":" + json::serialize(json::string(r.request_id)) + ",\"body\":" +
                (r.response_body.empty() ? std::string("null") : r.response_body) + "},\"error\":null}\n";
    } else {
        line += "null,\"error\":{\"code\":" + json::serialize(json::string(r.error_code)) +
                ",\"message\":" + json::serialize(json::string(r.error_message)) + "}}\n";
    }
    return line;
}

void finalize_ready(const config& cfg, store& db, const aq_files_v1& files, const std::string& me) {
    const long long lease_ms = static_cast<long long>(cfg.lease_seconds) * 1000;
    for (const auto& w : db.finalize_candidates(now_ms() / 1000, now_ms())) {
        long long t = now_ms();
        if (!db.lease_batch(w.id, me, t, t + lease_ms)) continue;
        std::string final_status;
        auto counts = db.count_lines(w.id, t);
        if (w.status == "finalizing") {
            final_status = "completed";
        } else if (w.status == "cancelling") {
            if (counts.live_running > 0) {
                db.release_batch(w.id, me);
                continue;
            }
            db.close_unrun_lines(w.id, "batch_cancelled", "The batch was cancelled before this request ran.", t);
            final_status = "cancelled";
        } else if (w.expires_at <= t / 1000) {
            if (counts.live_running > 0) {
                db.release_batch(w.id, me);
                continue;
            }
            db.close_unrun_lines(w.id, "batch_expired", "The batch expired before this request could be run.", t);
            final_status = "expired";
        } else if (counts.not_done == 0) {
            final_status = "completed";
            db.mark_finalizing(w.id, t / 1000);
        } else {
            db.release_batch(w.id, me);
            continue;
        }
        auto b = db.get_batch(w.owner, w.id);
        if (!b) continue;
        std::int64_t expiry = b->output_expires_after > 0 ? b->output_expires_after : cfg.output_expires_after_seconds;
        std::string output_id, error_id;
        try {
            output_id = write_results(db, files, *b, true, expiry);
            error_id = write_results(db, files, *b, false, expiry);
        } catch (const files_error& e) {
            // Unavailable: the lease expires and a later run tries again. Refused for good (a
            // quota, a size limit): retrying cannot help, so the batch ends failed, saying why.
            if (e.status != AQ_ERR_LIMIT && e.status != AQ_ERR_INVALID) throw;
            json::array errors{{{"code", "output_file_rejected"},
                                {"message", std::string("The files store refused the result file: ") + e.what() +
                                                (e.status == AQ_ERR_LIMIT ? " (a limit or quota was exceeded)." : ".")},
                                {"param", nullptr},
                                {"line", nullptr}}};
            db.fail_finalize(w.id, json::serialize(errors), now_ms() / 1000);
            continue;
        }
        db.finish(w.id, output_id, error_id, final_status, now_ms() / 1000);
    }
}

}  // namespace batches
