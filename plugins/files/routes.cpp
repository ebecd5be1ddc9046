#include "routes.hpp"

#include "download.hpp"
#include "upload.hpp"
#include "upload_routes.hpp"

#include "sql/unavailable.hpp"

#include <charconv>

namespace aq::files {

void list(aq::request& req, store& files) {
    store::list_query q;
    if (auto limit = req.query_param("limit")) {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
        if (ec != std::errc() || end != limit->data() + limit->size() || n < 1 || n > 10000)
            throw aq::http_error(400, "Invalid 'limit': must be an integer between 1 and 10000.", "limit");
        q.limit = static_cast<std::size_t>(n);
    }
    if (auto order = req.query_param("order")) {
        if (*order != "asc" && *order != "desc")
            throw aq::http_error(400, "Invalid 'order': must be 'asc' or 'desc'.", "order");
        q.ascending = *order == "asc";
    }
    if (auto purpose = req.query_param("purpose"); purpose && !purpose->empty()) q.purpose = *purpose;
    if (auto after = req.query_param("after"); after && !after->empty()) q.after = *after;

    store::list_page page;
    try {
        page = files.list(req.owner(), q);
    } catch (const store::unknown_after& e) {
        throw aq::http_error(400, e.what(), "after");
    }
    boost::json::array data;
    for (const auto& f : page.files) data.push_back(f.to_json());
    boost::json::object out;
    out["object"] = "list";
    out["data"] = std::move(data);
    out["first_id"] = page.files.empty() ? boost::json::value(nullptr) : boost::json::value(page.files.front().id);
    out["last_id"] = page.files.empty() ? boost::json::value(nullptr) : boost::json::value(page.files.back().id);
    out["has_more"] = page.has_more;
    req.respond_json(200, out);
}

void retrieve(aq::request& req, store& files) {
    std::string id(req.param("file_id"));
    auto record = files.find(req.owner(), id);
    if (!record) throw aq::http_error(404, "No such File object: " + id, "id");
    req.respond_json(200, record->to_json());
}

void remove(aq::request& req, store& files) {
    std::string id(req.param("file_id"));
    if (!files.remove(req.owner(), id)) throw aq::http_error(404, "No such File object: " + id, "id");
    boost::json::object out;
    out["id"] = id;
    out["object"] = "file";
    out["deleted"] = true;
    req.respond_json(200, out);
}

namespace {

// A handler whose database is unavailable answers 503 database_unavailable with retry-after
// (sql/unavailable.hpp), one whose content store cannot be reached 503 store_unavailable, never
// 500; a download already streaming is cut off instead.
// The store's failure goes to the log (the operator's only view of why), never to the client.
template <class Fn>
aq::handler answering_unavailable(aq::host host, Fn fn) {
    return [host, fn = std::move(fn)](aq::request& req) {
        try {
            fn(req);
        } catch (const sql::unavailable& e) {
            throw sql::to_http_error(e);
        } catch (const content_unavailable& e) {
            host.warn(std::string("files: answered 503 store_unavailable: ") + e.what());
            throw aq::http_error(503, "The file store is unavailable; retry later.", {}, "store_unavailable")
                .with_retry_after(1);
        }
    };
}

}  // namespace

void register_routes(aq::host& host, const config& cfg, store& files, uploads& ups, const files_metrics& metrics) {
    // DELETE and GET take no body, but the Python SDK sends "Content-Type: application/json"
    // with an empty body on DELETE: a small limit tolerates a stray body.
    constexpr std::uint64_t small_body = 64 * 1024;
    // A body over the file limit (plus multipart framing) is refused the way API.md wants an
    // oversize file refused: 400 naming `file`, before the body is read when Content-Length
    // says so, and from read() when a chunked body grows past it.
    aq::body_limit upload_limit{cfg.max_file_bytes + multipart_overhead_bytes, 400,
                                too_large_message(cfg), "file"};
    host.route("POST", "/files", std::move(upload_limit),
               answering_unavailable(host, [&cfg, &files, &metrics](aq::request& req) {
                   metrics.count_upload([&] { return upload(req, cfg, files); });
               }));
    host.route("GET", "/files", 0, answering_unavailable(host, [&files](aq::request& req) { list(req, files); }));
    host.route("GET", "/files/{file_id}", 0,
               answering_unavailable(host, [&files](aq::request& req) { retrieve(req, files); }));
    host.route("DELETE", "/files/{file_id}", small_body,
               answering_unavailable(host, [&files](aq::request& req) { remove(req, files); }));
    host.route("GET", "/files/{file_id}/content", 0,
               answering_unavailable(host, [&files](aq::request& req) { download(req, files); }));

    // The Uploads API (uploads.hpp). A part over its limit is refused like an oversize file:
    // 400 naming `data`, before its body is read when Content-Length says so.
    constexpr std::uint64_t json_body = 1 << 20;  // 10,000 part ids fit
    host.route("POST", "/uploads", small_body,
               answering_unavailable(host, [&cfg, &ups, &metrics](aq::request& req) {
                   create_upload(req, cfg, ups);
                   metrics.upload_event(files_metrics::upload_created);
               }));
    aq::body_limit part_limit{uploads::max_part_bytes + multipart_overhead_bytes, 400, part_too_large_message(),
                              "data"};
    host.route("POST", "/uploads/{upload_id}/parts", std::move(part_limit),
               answering_unavailable(host, [&files, &ups, &metrics](aq::request& req) {
                   metrics.part_stored(add_upload_part(req, files, ups));
               }));
    host.route("POST", "/uploads/{upload_id}/complete", json_body,
               answering_unavailable(host, [&ups, &metrics](aq::request& req) {
                   complete_upload(req, ups);
                   metrics.upload_event(files_metrics::upload_completed);
               }));
    host.route("POST", "/uploads/{upload_id}/cancel", small_body,
               answering_unavailable(host, [&ups, &metrics](aq::request& req) {
                   cancel_upload(req, ups);
                   metrics.upload_event(files_metrics::upload_cancelled);
               }));
}

}  // namespace aq::files
