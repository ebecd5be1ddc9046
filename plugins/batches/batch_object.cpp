#include "batch_object.hpp"

#include <boost/json.hpp>

namespace batches {

namespace json = boost::json;

namespace {

json::value str_or_null(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }
json::value time_or_null(long long t) { return t == 0 ? json::value(nullptr) : json::value(t); }

}  // namespace

bool is_terminal(std::string_view s) noexcept {
    return s == "completed" || s == "failed" || s == "expired" || s == "cancelled";
}

json::object batch_object(const batch_row& b) {
    json::object o;
    o["id"] = b.id;
    o["object"] = "batch";
    o["endpoint"] = b.endpoint;
    o["model"] = str_or_null(b.model);
    if (b.errors.empty()) {
        o["errors"] = nullptr;
    } else {
        json::object e;
        e["object"] = "list";
        e["data"] = json::parse(b.errors);
        o["errors"] = std::move(e);
    }
    o["input_file_id"] = b.input_file_id;
    o["completion_window"] = b.completion_window;
    o["status"] = b.status;
    o["output_file_id"] = str_or_null(b.output_file_id);
    o["error_file_id"] = str_or_null(b.error_file_id);
    o["created_at"] = b.created_at;
    o["in_progress_at"] = time_or_null(b.in_progress_at);
    o["expires_at"] = time_or_null(b.expires_at);
    o["finalizing_at"] = time_or_null(b.finalizing_at);
    o["completed_at"] = time_or_null(b.completed_at);
    o["failed_at"] = time_or_null(b.failed_at);
    o["expired_at"] = time_or_null(b.expired_at);
    o["cancelling_at"] = time_or_null(b.cancelling_at);
    o["cancelled_at"] = time_or_null(b.cancelled_at);
    o["request_counts"] = {{"total", b.total}, {"completed", b.completed}, {"failed", b.failed}};
    o["usage"] = {{"input_tokens", b.usage.input_tokens},
                  {"input_tokens_details", {{"cached_tokens", b.usage.cached_tokens}}},
                  {"output_tokens", b.usage.output_tokens},
                  {"output_tokens_details", {{"reasoning_tokens", b.usage.reasoning_tokens}}},
                  {"total_tokens", b.usage.total_tokens}};
    o["metadata"] = b.metadata.empty() ? json::value(nullptr) : json::parse(b.metadata);
    return o;
}

}  // namespace batches
