#include "routes.hpp"

#include "batch_object.hpp"
#include "files_client.hpp"
#include "wall_clock.hpp"

#include "batch_line/line_rules.hpp"
#include "sql/unavailable.hpp"

#include <boost/json.hpp>

namespace batches {

namespace json = boost::json;

namespace {

std::string required_string(const json::object& body, const char* key) {
    auto* v = body.if_contains(key);
    if (!v || v->is_null()) throw aq::http_error(400, std::string("Missing required parameter: '") + key + "'.", key);
    if (!v->is_string() || v->as_string().empty())
        throw aq::http_error(400, std::string("Invalid type for '") + key + "': expected a non-empty string.", key);
    return std::string(v->as_string());
}

// Characters, not bytes: the limits are the OpenAI API's, counted in characters.
std::size_t utf8_length(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string validated_metadata(const json::object& body) {
    auto* v = body.if_contains("metadata");
    if (!v || v->is_null()) return {};
    if (!v->is_object()) throw aq::http_error(400, "Invalid type for 'metadata': expected an object.", "metadata");
    const auto& m = v->as_object();
    if (m.size() > 16) throw aq::http_error(400, "Invalid 'metadata': at most 16 keys are allowed.", "metadata");
    for (const auto& [k, val] : m) {
        if (utf8_length(k) > 64)
            throw aq::http_error(400, "Invalid 'metadata': keys can be at most 64 characters long.", "metadata");
        if (!val.is_string())
            throw aq::http_error(400, "Invalid 'metadata': values must be strings.", "metadata");
        if (utf8_length(val.as_string()) > 512)
            throw aq::http_error(400, "Invalid 'metadata': values can be at most 512 characters long.", "metadata");
    }
    return json::serialize(m);
}

long long validated_output_expiry(const json::object& body) {
    auto* v = body.if_contains("output_expires_after");
    if (!v || v->is_null()) return 0;
    const char* param = "output_expires_after";
    if (!v->is_object()) throw aq::http_error(400, "Invalid type for 'output_expires_after': expected an object.", param);
    const auto& o = v->as_object();
    auto* anchor = o.if_contains("anchor");
    if (!anchor || !anchor->is_string() || anchor->as_string() != "created_at")
        throw aq::http_error(400, "Invalid 'output_expires_after.anchor': only 'created_at' is supported.",
                             "output_expires_after.anchor");
    auto* seconds = o.if_contains("seconds");
    long long s = -1;
    if (seconds && seconds->is_int64()) s = seconds->as_int64();
    else if (seconds && seconds->is_uint64() && seconds->as_uint64() < 1ull << 62)
        s = static_cast<long long>(seconds->as_uint64());
    if (s < 3600 || s > 2592000)
        throw aq::http_error(400, "Invalid 'output_expires_after.seconds': must be between 3600 and 2592000.",
                             "output_expires_after.seconds");
    return s;
}

std::string path_id(aq::request& req) { return std::string(req.param("batch_id")); }

aq::http_error not_found(const std::string& id) {
    return aq::http_error(404, "No batch found with id '" + id + "'.", "batch_id");
}

void create(aq::request& req, const config& cfg, batch_table& db, const aq_files_v1& files) {
    json::object body = req.read_json_object();
    batch_row b;
    b.owner = std::string(req.owner());
    b.input_file_id = required_string(body, "input_file_id");
    b.endpoint = required_string(body, "endpoint");
    if (!aq::batch_line::supported_url(b.endpoint))
        throw aq::http_error(400,
                             "Invalid value for 'endpoint': supported are /v1/chat/completions, /v1/completions,"
                             " /v1/embeddings and /v1/responses.",
                             "endpoint");
    b.completion_window = required_string(body, "completion_window");
    if (b.completion_window != "24h")
        throw aq::http_error(400, "Invalid value for 'completion_window': only '24h' is supported.", "completion_window");
    b.metadata = validated_metadata(body);
    b.output_expires_after = validated_output_expiry(body);

    try {
        file_reader in(files, b.input_file_id, b.owner);
        if (in.purpose() != "batch")
            throw aq::http_error(400, "The input file's purpose must be 'batch', not '" + std::string(in.purpose()) + "'.",
                                 "input_file_id");
        if (in.bytes() > cfg.max_input_bytes)
            throw aq::http_error(400, "The input file is larger than the maximum of " +
                                          std::to_string(cfg.max_input_bytes) + " bytes.",
                                 "input_file_id");
    } catch (const files_error& e) {
        if (e.status == AQ_ERR_NOT_FOUND)
            throw aq::http_error(404, "No such File object: " + b.input_file_id, "input_file_id");
        // The files plugin could not reach its storage (its database, mostly): the same answer
        // as our own database being down, so clients see one kind of 503 and retry it.
        throw aq::sql::unavailable(aq::sql::unavailable::reason::unreachable, e.what(), 1);
    }

    if (db.count_active(b.owner) >= static_cast<long long>(cfg.max_active_batches_per_owner)) {
        static constexpr aq_header headers[] = {{{"Content-Type", 12}, {"application/json", 16}},
                                                {{"retry-after", 11}, {"60", 2}}};
        req.respond(429,
                    aq::error_envelope("You have reached the maximum of " +
                                           std::to_string(cfg.max_active_batches_per_owner) +
                                           " active batches; wait for one to finish.",
                                       "rate_limit_error", {}, "too_many_active_batches"),
                    headers);
        return;
    }

    b.id = aq::random_id("batch_");
    b.status = "validating";
    b.created_at = now_s();
    b.expires_at = b.created_at + cfg.completion_window_seconds;
    db.insert(b);
    req.respond_json(200, batch_object(b));
}

void list(aq::request& req, batch_table& db) {
    int limit = 20;
    if (auto l = req.query_param("limit")) {
        try {
            std::size_t used = 0;
            limit = std::stoi(*l, &used);
            if (used != l->size()) limit = 0;
        } catch (...) {
            limit = 0;
        }
        if (limit < 1 || limit > 100)
            throw aq::http_error(400, "Invalid 'limit': must be an integer between 1 and 100.", "limit");
    }
    std::string after = req.query_param("after").value_or("");
    auto rows = db.list(std::string(req.owner()), after, limit + 1);
    bool has_more = rows.size() > static_cast<std::size_t>(limit);
    if (has_more) rows.resize(limit);
    json::array data;
    for (const auto& r : rows) data.push_back(batch_object(r));
    json::object out;
    out["object"] = "list";
    out["data"] = std::move(data);
    out["first_id"] = rows.empty() ? json::value(nullptr) : json::value(rows.front().id);
    out["last_id"] = rows.empty() ? json::value(nullptr) : json::value(rows.back().id);
    out["has_more"] = has_more;
    req.respond_json(200, out);
}

void get(aq::request& req, batch_table& db) {
    std::string id = path_id(req);
    auto b = db.get(std::string(req.owner()), id);
    if (!b) throw not_found(id);
    req.respond_json(200, batch_object(*b));
}

void cancel(aq::request& req, batch_table& db, halted_batches& halted) {
    req.read_all();  // an empty JSON body is allowed (the Python SDK sends one)
    std::string id = path_id(req);
    auto b = db.cancel(std::string(req.owner()), id, now_s());
    if (!b) throw not_found(id);
    if (is_terminal(b->status))
        throw aq::http_error(400, "Cannot cancel a batch with status '" + b->status + "'.", "batch_id");
    // Before answering: from now on no line of it starts on this host (other hosts learn it
    // from the database within poll_interval_ms).
    if (b->status == "cancelling") halted.halt(id);
    req.respond_json(200, batch_object(*b));
}

// A handler whose database cannot serve it answers 503 database_unavailable with retry-after
// (sql/unavailable.hpp), never 500: the OpenAI SDKs retry that.
template <class Fn>
aq::handler answering_unavailable(Fn fn) {
    return [fn = std::move(fn)](aq::request& req) {
        try {
            fn(req);
        } catch (const aq::sql::unavailable& e) {
            throw aq::sql::to_http_error(e);
        }
    };
}

}  // namespace

void register_routes(aq::host& host, const config& cfg, batch_table& db, halted_batches& halted,
                     const aq_files_v1& files) {
    host.route("POST", "/batches", 1 << 20,
               answering_unavailable([&cfg, &db, &files](aq::request& req) { create(req, cfg, db, files); }));
    host.route("GET", "/batches", 0, answering_unavailable([&db](aq::request& req) { list(req, db); }));
    host.route("GET", "/batches/{batch_id}", 0, answering_unavailable([&db](aq::request& req) { get(req, db); }));
    host.route("POST", "/batches/{batch_id}/cancel", 64 << 10,
               answering_unavailable([&db, &halted](aq::request& req) { cancel(req, db, halted); }));
}

}  // namespace batches
