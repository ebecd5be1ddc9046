#include "finalizer.hpp"

#include "files_client.hpp"
#include "wall_clock.hpp"

#include <boost/json.hpp>

namespace batches {

namespace json = boost::json;

namespace {

constexpr int page_rows = 1000;

// Writes one file of results (successes or failures); returns its id, '' when there were none.
// Gives up without committing (returns nullopt) when the lease is lost meanwhile.
std::optional<std::string> write_results(line_queue& lines, const aq_files_v1& files, const batch_row& b,
                                         bool success, std::int64_t expires_after,
                                         const heartbeat::batch_hold& hold) {
    std::unique_ptr<file_writer> out;
    long long after = 0;
    std::string buf;
    for (;;) {
        if (hold.lost()) return std::nullopt;
        auto rows = lines.results_page(b.id, after, page_rows, success);
        if (rows.empty()) break;
        if (!out)
            out = std::make_unique<file_writer>(files, b.owner, b.id + (success ? "_output.jsonl" : "_error.jsonl"),
                                                "batch_output", expires_after);
        buf.clear();
        for (const auto& r : rows) buf += result_line(r);
        out->write(buf);
        after = rows.back().line_no;
    }
    if (hold.lost()) return std::nullopt;
    return out ? out->commit() : std::string();
}

// What a finalizing host does with a batch it leased, and the status it ends in.
enum class verdict { wait, completed, cancelled, expired };

verdict judge(const batch_work& w, const line_queue::line_counts& counts, long long now_s) {
    if (w.status == "finalizing") return verdict::completed;
    if (w.status == "cancelling") return counts.live_running > 0 ? verdict::wait : verdict::cancelled;
    if (w.expires_at <= now_s) return counts.live_running > 0 ? verdict::wait : verdict::expired;
    return counts.not_done == 0 ? verdict::completed : verdict::wait;
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

void finalize_ready(aq::host host, const config& cfg, batch_table& batches, line_queue& lines,
                    const aq_files_v1& files, heartbeat& hb) {
    const std::string& me = hb.me();
    const long long lease_ms = static_cast<long long>(cfg.lease_seconds) * 1000;
    for (const auto& w : batches.finalize_candidates(now_s(), now_ms())) {
        long long t = now_ms();
        if (!batches.lease(w.id, me, t, t + lease_ms)) continue;
        heartbeat::batch_hold hold(hb, w.id);
        verdict v = judge(w, lines.count(w.id, t), t / 1000);
        std::string final_status;
        bool ours = true;
        switch (v) {
        case verdict::wait:
            batches.release(w.id, me);
            continue;
        case verdict::cancelled:
            ours = lines.close_unrun(w.id, me, batch_cancelled, t);
            final_status = "cancelled";
            break;
        case verdict::expired:
            ours = lines.close_unrun(w.id, me, batch_expired, t);
            final_status = "expired";
            break;
        case verdict::completed:
            if (w.status != "finalizing") ours = batches.mark_finalizing(w.id, me, t / 1000);
            final_status = "completed";
            break;
        }
        if (!ours) continue;  // another host took the batch over
        auto b = batches.get(w.owner, w.id);
        if (!b) continue;
        std::int64_t expiry = b->output_expires_after > 0 ? b->output_expires_after : cfg.output_expires_after_seconds;
        std::optional<std::string> output_id, error_id;
        // Deletes the result files committed so far: they must not stay behind as a second copy
        // when another host owns the batch now, nor as orphans when this attempt failed.
        auto discard = [&](const char* why) {
            for (const auto* id : {&output_id, &error_id}) {
                if (!*id || (*id)->empty()) continue;
                try {
                    remove_file(files, **id, b->owner);
                } catch (const std::exception& e) {
                    host.warn("batches: " + w.id + ": could not delete result file " + **id + " (" + why +
                              "): " + e.what());
                }
            }
        };
        try {
            output_id = write_results(lines, files, *b, true, expiry, hold);
            if (output_id) error_id = write_results(lines, files, *b, false, expiry, hold);
        } catch (const files_error& e) {
            discard("finalization failed");
            // Unavailable: the lease expires and a later run tries again. Refused for good (a
            // quota, a size limit): retrying cannot help, so the batch ends failed, saying why.
            if (e.status != AQ_ERR_LIMIT && e.status != AQ_ERR_INVALID) throw;
            json::array errors{{{"code", "output_file_rejected"},
                                {"message", std::string("The files store refused the result file: ") + e.what() +
                                                (e.status == AQ_ERR_LIMIT ? " (a limit or quota was exceeded)." : ".")},
                                {"param", nullptr},
                                {"line", nullptr}}};
            if (batches.fail_finalization(w.id, me, json::serialize(errors), now_s()) &&
                cfg.results_retention_seconds == 0) {
                lines.drop_all(w.id);
                batches.mark_lines_purged(w.id);
            }
            continue;
        } catch (...) {
            discard("finalization failed");
            throw;
        }
        if (!output_id || !error_id || !batches.finish(w.id, me, *output_id, *error_id, final_status, now_s())) {
            discard("the batch's lease was lost");
            host.info("batches: " + w.id + ": lease lost while finalizing; another host finishes it");
            continue;
        }
        if (cfg.results_retention_seconds == 0) {
            lines.drop_all(w.id);
            batches.mark_lines_purged(w.id);
        }
    }
}

}  // namespace batches
