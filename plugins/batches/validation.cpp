#include "validation.hpp"

#include "files_client.hpp"
#include "wall_clock.hpp"

#include <boost/json.hpp>

#include <unordered_set>

namespace batches {

namespace json = boost::json;

namespace {

constexpr std::size_t max_errors = 100;
constexpr std::size_t max_line_bytes = 64u << 20;
// Lines are staged a slice per transaction, so no write transaction spans the reading and
// parsing of the user's file (on SQLite, uploads, cancels and result recording would wait
// behind it). The slices stay invisible to claims until activate() flips the batch to
// in_progress, in one short transaction.
constexpr std::size_t slice_lines = 500;
constexpr std::size_t slice_max_bytes = 4u << 20;

struct error_list {
    json::array data;
    void add(const char* code, std::string message, const char* param, long long line) {
        if (data.size() >= max_errors) return;
        json::object e;
        e["code"] = code;
        e["message"] = std::move(message);
        e["param"] = param ? json::value(param) : json::value(nullptr);
        e["line"] = line > 0 ? json::value(line) : json::value(nullptr);
        data.push_back(std::move(e));
    }
    bool full() const { return data.size() >= max_errors; }
    bool empty() const { return data.empty(); }
};

bool blank(std::string_view s) {
    for (char c : s)
        if (c != ' ' && c != '\t' && c != '\r') return false;
    return true;
}

}  // namespace

void validate_batch(const config& cfg, batch_table& batches, line_queue& lines, const aq_files_v1& files,
                    const batch_work& b, const std::string& me) {
    const std::string& input_file_id = b.input_file_id;
    error_list errors;
    // A failed batch keeps none of its lines (the purge job removes what a crash left behind).
    auto fail = [&](const json::array& data) {
        if (!batches.fail_validation(b.id, me, json::serialize(data), now_s())) return;  // not ours any more
        lines.drop_all(b.id);
        batches.mark_lines_purged(b.id);
    };
    std::unique_ptr<file_reader> in;
    try {
        in = std::make_unique<file_reader>(files, input_file_id, b.owner);
    } catch (const files_error& e) {
        if (e.status != AQ_ERR_NOT_FOUND) throw;
        errors.add("file_not_found", "The input file " + input_file_id + " no longer exists.", "input_file_id", 0);
        fail(errors.data);
        return;
    }
    if (!lines.unstage(b.id, me)) return;  // what an earlier attempt (a host that died) staged

    std::vector<line_row> slice;
    std::size_t slice_bytes = 0;
    bool lease_lost = false;
    std::unordered_set<std::string> seen;
    std::string model_of_batch;
    long long line_no = 0, count = 0;
    bool too_many = false;

    auto check_line = [&](std::string_view text) {
        ++line_no;
        if (blank(text)) return;
        ++count;
        if (count > static_cast<long long>(cfg.max_requests_per_batch)) {
            if (!too_many)
                errors.add("too_many_requests",
                           "The batch has more than the maximum of " + std::to_string(cfg.max_requests_per_batch) +
                               " requests.",
                           nullptr, line_no);
            too_many = true;
            return;
        }
        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec || !v.is_object()) {
            errors.add("invalid_json_line", "Line " + std::to_string(line_no) + " is not a valid JSON object.", nullptr,
                       line_no);
            return;
        }
        auto& o = v.as_object();
        auto* cid = o.if_contains("custom_id");
        if (!cid || !cid->is_string() || cid->as_string().empty()) {
            errors.add("invalid_request", "Line " + std::to_string(line_no) + ": 'custom_id' must be a non-empty string.",
                       "custom_id", line_no);
            return;
        }
        std::string custom_id(cid->as_string());
        auto* method = o.if_contains("method");
        if (!method || !method->is_string() || method->as_string() != "POST") {
            errors.add("invalid_request", "Line " + std::to_string(line_no) + ": 'method' must be 'POST'.", "method",
                       line_no);
            return;
        }
        auto* url = o.if_contains("url");
        if (!url || !url->is_string() || url->as_string() != b.endpoint) {
            errors.add("url_mismatch",
                       "Line " + std::to_string(line_no) + ": 'url' must match the batch's endpoint " + b.endpoint + ".",
                       "url", line_no);
            return;
        }
        auto* body = o.if_contains("body");
        if (!body || !body->is_object()) {
            errors.add("invalid_request", "Line " + std::to_string(line_no) + ": 'body' must be a JSON object.", "body",
                       line_no);
            return;
        }
        auto* model = body->as_object().if_contains("model");
        if (!model || !model->is_string() || model->as_string().empty()) {
            errors.add("invalid_request", "Line " + std::to_string(line_no) + ": 'body.model' must be a string.",
                       "body.model", line_no);
            return;
        }
        std::string model_name(model->as_string());
        if (!cfg.upstream_for(model_name)) {
            errors.add("model_not_found",
                       "Line " + std::to_string(line_no) + ": no upstream serves the model '" + model_name + "'.",
                       "body.model", line_no);
            return;
        }
        if (!seen.insert(custom_id).second) {
            errors.add("duplicate_custom_id",
                       "Line " + std::to_string(line_no) + ": the custom_id '" + custom_id + "' is used more than once.",
                       "custom_id", line_no);
            return;
        }
        if (!errors.empty()) return;  // nothing will be stored; keep scanning for more errors
        if (model_of_batch.empty()) model_of_batch = model_name;
        slice.push_back(line_row{line_no, std::move(custom_id), std::move(model_name), json::serialize(*body)});
        slice_bytes += slice.back().body.size();
        if (slice.size() >= slice_lines || slice_bytes >= slice_max_bytes) {
            lease_lost = !lines.stage(b.id, me, slice);
            slice.clear();
            slice_bytes = 0;
        }
    };

    std::string pending;
    std::vector<char> buf(1 << 20);
    bool input_gone = false;
    try {
        while (!errors.full() && !lease_lost) {
            std::size_t n = in->read(buf.data(), buf.size());
            if (n == 0) break;
            std::string_view chunk(buf.data(), n);
            while (!chunk.empty() && !errors.full() && !lease_lost) {
                auto nl = chunk.find('\n');
                if (nl == std::string_view::npos) {
                    pending.append(chunk);
                    if (pending.size() > max_line_bytes) {
                        errors.add("invalid_json_line", "Line " + std::to_string(line_no + 1) + " is too long.", nullptr,
                                   line_no + 1);
                        pending.clear();
                    }
                    break;
                }
                if (pending.empty()) {
                    check_line(chunk.substr(0, nl));
                } else {
                    pending.append(chunk.substr(0, nl));
                    check_line(pending);
                    pending.clear();
                }
                chunk.remove_prefix(nl + 1);
            }
        }
        if (!pending.empty() && !errors.full() && !lease_lost) check_line(pending);
    } catch (const files_error& e) {
        if (e.status != AQ_ERR_NOT_FOUND) throw;
        input_gone = true;
    }
    if (lease_lost) return;  // another host validates it now
    if (input_gone) {
        error_list gone;
        gone.add("file_not_found", "The input file " + input_file_id + " was deleted while it was being read.",
                 "input_file_id", 0);
        fail(gone.data);
        return;
    }
    if (errors.empty() && count == 0) errors.add("empty_file", "The input file has no requests.", nullptr, 0);
    if (!errors.empty()) {
        fail(errors.data);
        return;
    }
    if (!lines.stage(b.id, me, slice)) return;
    batches.activate(b.id, me, model_of_batch, count, now_s());
}

}  // namespace batches
