#include "upload_routes.hpp"

#include "multipart.hpp"
#include "upload.hpp"

#include <set>

namespace aq::files {
namespace {

constexpr std::size_t read_buffer_bytes = 256 * 1024;
// More would be parts of a few bytes each; 10,000 bounds the work of one completion.
constexpr std::size_t max_part_ids = 10000;

[[noreturn]] void bad(std::string message, std::string param = {}) {
    throw aq::http_error(400, std::move(message), std::move(param));
}

const boost::json::value& required(const boost::json::object& body, const char* name) {
    const boost::json::value* v = body.if_contains(name);
    if (!v || v->is_null()) bad("Missing required parameter: '" + std::string(name) + "'.", name);
    return *v;
}

std::string string_field(const boost::json::object& body, const char* name) {
    const boost::json::value& v = required(body, name);
    if (!v.is_string()) bad("Invalid type for '" + std::string(name) + "': expected a string.", name);
    return std::string(v.as_string());
}

// A MIME type as a client names it: "type/subtype" with optional parameters, printable ASCII.
bool plausible_mime_type(std::string_view m) {
    if (m.empty() || m.size() > 255 || m.find('/') == std::string_view::npos) return false;
    for (char ch : m) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7F) return false;
    }
    return true;
}

// The file's lifetime from expires_after {anchor: "created_at", seconds}, as for POST /files.
std::int64_t file_lifetime(const boost::json::object& body, const config& cfg) {
    const boost::json::value* v = body.if_contains("expires_after");
    if (!v || v->is_null()) return 0;
    if (!v->is_object()) bad("Invalid type for 'expires_after': expected an object.", "expires_after");
    const auto& o = v->as_object();
    const boost::json::value* anchor = o.if_contains("anchor");
    if (!anchor || !anchor->is_string() || anchor->as_string() != "created_at")
        bad("Invalid 'expires_after.anchor': only 'created_at' is supported.", "expires_after.anchor");
    const boost::json::value* seconds = o.if_contains("seconds");
    const std::int64_t max = std::min(config::max_expires_after, cfg.max_expiry_seconds);
    if (!seconds || !seconds->is_int64() || seconds->as_int64() < config::min_expires_after ||
        seconds->as_int64() > max)
        bad("Invalid 'expires_after.seconds': must be an integer between " +
                std::to_string(config::min_expires_after) + " and " + std::to_string(max) + ".",
            "expires_after.seconds");
    return seconds->as_int64();
}

}  // namespace

std::string part_too_large_message() {
    return "Part is too large: the limit is " + std::to_string(uploads::max_part_bytes) + " bytes.";
}

void create_upload(aq::request& req, const config& cfg, uploads& ups) {
    const boost::json::object body = req.read_json_object();
    upload_record u;
    u.owner = req.owner();

    const boost::json::value& bytes = required(body, "bytes");
    if (!bytes.is_int64() && !bytes.is_uint64()) bad("Invalid type for 'bytes': expected an integer.", "bytes");
    if (bytes.is_int64() && bytes.as_int64() <= 0) bad("Invalid 'bytes': must be a positive integer.", "bytes");
    u.bytes = bytes.is_int64() ? static_cast<std::uint64_t>(bytes.as_int64()) : bytes.as_uint64();
    if (u.bytes > cfg.max_upload_bytes)
        bad("Invalid 'bytes': an Upload may have at most " + std::to_string(cfg.max_upload_bytes) + " bytes.",
            "bytes");

    u.filename = string_field(body, "filename");
    if (auto problem = filename_problem(u.filename); !problem.empty()) bad(problem, "filename");
    u.mime_type = string_field(body, "mime_type");
    if (!plausible_mime_type(u.mime_type)) bad("Invalid 'mime_type': expected a MIME type such as 'text/jsonl'.", "mime_type");
    u.purpose = string_field(body, "purpose");
    if (auto problem = purpose_problem(cfg, u.purpose); !problem.empty()) bad(problem, "purpose");
    if (u.purpose == "batch" && !u.filename.ends_with(".jsonl"))
        bad("Invalid file format for Batch API. Must be .jsonl", "filename");
    u.file_lifetime = file_lifetime(body, cfg);

    // What can never fit is refused now, not after the parts were sent; the quota as it stands
    // when the Upload completes is checked then.
    if (cfg.quota_bytes && u.bytes > cfg.quota_bytes)
        throw aq::http_error(413, "Storage quota exceeded: at most " + std::to_string(cfg.quota_bytes) +
                                      " bytes may be stored.",
                             "bytes", "quota_exceeded");

    upload_record created = ups.create(std::move(u));
    req.respond_json(200, created.to_json(unix_now(), std::nullopt));
}

std::uint64_t add_upload_part(aq::request& req, store& files, uploads& ups) {
    const std::string owner = req.owner();
    const upload_record u = ups.get(owner, req.param("upload_id"));
    uploads::require_pending(u, "add a part to");

    auto content_type = req.header("Content-Type");
    std::optional<std::string> boundary = content_type ? multipart::boundary_of(*content_type) : std::nullopt;
    if (!boundary)
        throw aq::http_error(415, "The request body must be multipart/form-data with a boundary.", "",
                             "unsupported_media_type");

    std::unique_ptr<store::writer> writer;
    bool in_data = false, data_seen = false;
    multipart::callbacks cb{
        [&](const multipart::part& p) {
            in_data = p.name == "data";
            if (!in_data) return;  // other fields are ignored, unbuffered
            if (data_seen) bad("Duplicate parameter: 'data' may be sent only once.", "data");
            data_seen = true;
            writer = files.create(owner, uploads::max_part_bytes);
        },
        [&](std::string_view d) {
            if (!in_data) return;
            if (writer->bytes() + d.size() > uploads::max_part_bytes) bad(part_too_large_message(), "data");
            writer->write(d);
        },
        [&] { in_data = false; },
    };
    multipart parser(*boundary, std::move(cb));
    std::string buffer(read_buffer_bytes, '\0');
    try {
        while (std::size_t n = req.read(buffer)) parser.push(std::string_view(buffer.data(), n));
        parser.finish();
    } catch (const multipart::error& e) {
        bad(e.what());
    }
    if (!data_seen) bad("Missing required parameter: 'data'.", "data");
    if (writer->bytes() == 0) bad("The part is empty.", "data");
    const std::uint64_t bytes = writer->bytes();
    req.respond_json(200, ups.add_part(u, *writer));
    return bytes;
}

void complete_upload(aq::request& req, uploads& ups) {
    const upload_record u = ups.get(req.owner(), req.param("upload_id"));
    const boost::json::object body = req.read_json_object();
    const boost::json::value& ids = required(body, "part_ids");
    if (!ids.is_array()) bad("Invalid type for 'part_ids': expected an array of strings.", "part_ids");
    if (ids.as_array().size() > max_part_ids)
        bad("Invalid 'part_ids': at most " + std::to_string(max_part_ids) + " parts.", "part_ids");
    std::vector<std::string> part_ids;
    for (const auto& id : ids.as_array()) {
        if (!id.is_string()) bad("Invalid type for 'part_ids': expected an array of strings.", "part_ids");
        part_ids.emplace_back(id.as_string());
    }
    std::optional<std::string> md5;
    if (const boost::json::value* m = body.if_contains("md5"); m && !m->is_null()) {
        if (!m->is_string()) bad("Invalid type for 'md5': expected a string.", "md5");
        md5 = std::string(m->as_string());
    }
    req.respond_json(200, ups.complete(u, part_ids, md5));
}

void cancel_upload(aq::request& req, uploads& ups) {
    req.respond_json(200, ups.cancel(req.owner(), req.param("upload_id")));
}

}  // namespace aq::files
