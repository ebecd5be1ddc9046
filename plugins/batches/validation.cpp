#include "validation.hpp"

#include "files_client.hpp"
#include "wall_clock.hpp"

#include "batch_line/validator.hpp"

#include <boost/json.hpp>

namespace batches {

namespace json = boost::json;

namespace {

// Problems listed in errors.data before validation stops reading.
constexpr std::size_t max_errors = 100;
// Lines are staged a slice per transaction, so no write transaction spans the reading and
// parsing of the user's file (on SQLite, uploads, cancels and result recording would wait
// behind it). The slices stay invisible to claims until activate() flips the batch to
// in_progress, in one short transaction.
constexpr std::size_t slice_lines = 500;
constexpr std::size_t slice_max_bytes = 4u << 20;

json::object error_entry(const std::string& code, const std::string& message, const std::string& param,
                         std::uint64_t line) {
    return json::object{{"code", code},
                        {"message", message},
                        {"param", param.empty() ? json::value(nullptr) : json::value(param)},
                        {"line", line > 0 ? json::value(line) : json::value(nullptr)}};
}

}  // namespace

aq::batch_line::options line_rules_for(const config& cfg, const std::string& endpoint) {
    aq::batch_line::options o;
    o.limit.max_line_bytes = cfg.max_line_bytes;
    o.limit.max_requests = cfg.max_requests_per_batch;
    o.rules.endpoint = endpoint;
    o.rules.model_known = [&cfg](std::string_view model) { return cfg.served(model); };
    o.max_problems = max_errors;
    o.scratch_dir = cfg.scratch_dir;
    return o;
}

void validate_batch(const config& cfg, batch_table& batches, line_queue& lines, const aq_files_v1& files,
                    const batch_work& b, const std::string& me) {
    const std::string& input_file_id = b.input_file_id;
    // A failed batch keeps none of its lines (the purge job removes what a crash left behind).
    auto fail = [&](const json::array& data) {
        if (!batches.fail_validation(b.id, me, json::serialize(data), now_s())) return;  // not ours any more
        lines.drop_all(b.id);
        batches.mark_lines_purged(b.id);
    };
    auto gone = [&](const char* how) {
        fail(json::array{error_entry("file_not_found", "The input file " + input_file_id + how, "input_file_id", 0)});
    };
    std::unique_ptr<file_reader> in;
    try {
        in = std::make_unique<file_reader>(files, input_file_id, b.owner);
    } catch (const files_error& e) {
        if (e.status != AQ_ERR_NOT_FOUND) throw;
        gone(" no longer exists.");
        return;
    }
    if (!lines.unstage(b.id, me)) return;  // what an earlier attempt (a host that died) staged

    std::vector<line_row> slice;
    std::size_t slice_bytes = 0;
    bool lease_lost = false;
    std::string model_of_batch;
    auto stage_slice = [&] {
        lease_lost = !lines.stage(b.id, me, slice);
        slice.clear();
        slice_bytes = 0;
    };
    // The same rules as the upload's (plugins/batch_line), plus the batch's endpoint and the
    // models the upstreams serve; every accepted line is staged with its raw body, sent
    // upstream byte for byte.
    aq::batch_line::options rules = line_rules_for(cfg, b.endpoint);
    rules.keep_text = true;
    rules.on_line = [&](const aq::batch_line::line& l) {
        if (lease_lost) return;
        if (model_of_batch.empty()) model_of_batch = std::string(l.model);
        slice.push_back(line_row{static_cast<long long>(l.number), std::string(l.custom_id), std::string(l.model),
                                 std::string(l.body)});
        slice_bytes += l.body.size();
        if (slice.size() >= slice_lines || slice_bytes >= slice_max_bytes) stage_slice();
    };
    aq::batch_line::validator check(std::move(rules));

    std::vector<char> buf(1 << 20);
    try {
        while (!check.stopped() && !lease_lost) {
            std::size_t n = in->read(buf.data(), buf.size());
            if (n == 0) break;
            check.push(std::string_view(buf.data(), n));
        }
        if (!lease_lost) check.finish();
    } catch (const files_error& e) {
        if (e.status != AQ_ERR_NOT_FOUND) throw;
        gone(" was deleted while it was being read.");
        return;
    }
    if (lease_lost) return;  // another host validates it now
    if (check.failed()) {
        json::array data;
        for (const auto& p : check.problems()) data.push_back(error_entry(p.code, p.message, p.param, p.line));
        fail(data);
        return;
    }
    if (!slice.empty()) stage_slice();
    if (lease_lost) return;
    batches.activate(b.id, me, model_of_batch, static_cast<long long>(check.requests()), now_s());
}

}  // namespace batches
