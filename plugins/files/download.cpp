#include "download.hpp"

#include "byte_range.hpp"
#include "content_disposition.hpp"

#include <algorithm>
#include <cstring>

namespace aq::files {

namespace {

// The content after the status went out, read from the store one chunk at a time as the client
// takes it: the host calls read() on a worker only when the connection has room, so a client
// that stops reading holds this object (at most one chunk) and no thread.
class content_source : public aq::body_source {
public:
    content_source(std::unique_ptr<store::reader> reader, std::string first, std::uint64_t length)
        : reader_(std::move(reader)), chunk_(std::move(first)), left_(length) {}

    std::size_t read(std::span<char> buf) override {
        if (left_ == 0 || buf.empty()) return 0;
        if (offset_ == chunk_.size()) {
            chunk_ = reader_->next();  // store::gone (file deleted meanwhile) aborts the response
            offset_ = 0;
            if (chunk_.empty()) throw std::runtime_error("file content ended before its recorded size");
        }
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>({buf.size(), chunk_.size() - offset_, left_}));
        std::memcpy(buf.data(), chunk_.data() + offset_, n);
        offset_ += n;
        left_ -= n;
        if (offset_ == chunk_.size()) {
            std::string().swap(chunk_);  // a client that stalls now holds nothing of the file
            offset_ = 0;
        }
        return n;
    }

private:
    std::unique_ptr<store::reader> reader_;
    std::string chunk_;
    std::size_t offset_ = 0;
    std::uint64_t left_;
};

}  // namespace

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
    req.respond_source(status, headers, static_cast<std::int64_t>(length),
                       std::make_unique<content_source>(std::move(reader), std::move(chunk), length));
}

}  // namespace aq::files
