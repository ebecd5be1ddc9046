#include "download.hpp"

#include "byte_range.hpp"
#include "content_disposition.hpp"

namespace aq::files {

void download(aq::request& req, store& files) {
    std::string id(req.param("file_id"));
    auto reader = files.open(req.owner(), id);
    if (!reader) throw aq::http_error(404, "No such File object: " + id, "id");
    const file_record& info = reader->info();
    const std::string etag = "\"" + info.sha256 + "\"";
    const std::string size = std::to_string(info.bytes);

    byte_range range;
    if (auto header = req.header("Range")) {
        range = byte_range::parse(*header, info.bytes);
        if (auto if_range = req.header("If-Range"); if_range && *if_range != etag) range = byte_range{};
    }
    if (range.result == byte_range::kind::unsatisfiable) {
        const std::string content_range = "bytes */" + size;
        const aq_header headers[] = {{aq::to_aq("Content-Type"), aq::to_aq("application/json")},
                                     {aq::to_aq("Content-Range"), aq::to_aq(content_range)},
                                     {aq::to_aq("ETag"), aq::to_aq(etag)}};
        req.respond(416,
                    aq::error_envelope("Requested range not satisfiable: the file has " + size + " bytes.",
                                       "invalid_request_error", "range"),
                    headers);
        return;
    }

    const std::string disposition = content_disposition(info.filename);
    std::uint64_t first = 0, length = info.bytes;
    std::string content_range;
    int status = 200;
    if (range.result == byte_range::kind::partial) {
        status = 206;
        first = range.first;
        length = range.last - range.first + 1;
        content_range = "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" + size;
    }
    std::vector<aq_header> headers = {
        {aq::to_aq("Content-Type"), aq::to_aq("application/octet-stream")},
        {aq::to_aq("Content-Disposition"), aq::to_aq(disposition)},
        {aq::to_aq("ETag"), aq::to_aq(etag)},
        {aq::to_aq("Accept-Ranges"), aq::to_aq("bytes")},
    };
    if (status == 206) headers.push_back({aq::to_aq("Content-Range"), aq::to_aq(content_range)});

    // The first chunk is read before the status goes out, so a file deleted between the lookup
    // and here is still a clean 404 rather than an aborted 200.
    reader->seek(first);
    std::string chunk;
    try {
        chunk = length ? reader->next() : std::string();
    } catch (const store::gone&) {
        throw aq::http_error(404, "No such File object: " + id, "id");
    }
    req.begin(status, headers, static_cast<std::int64_t>(length));
    std::uint64_t left = length;
    while (left > 0) {
        if (chunk.size() > left) chunk.resize(static_cast<std::size_t>(left));
        req.write(chunk);
        left -= chunk.size();
        if (left > 0) chunk = reader->next();  // store::gone here aborts the connection
    }
    req.end();
}

}  // namespace aq::files
