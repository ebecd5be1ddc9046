#include "download.hpp"

#include "byte_range.hpp"
#include "content_disposition.hpp"

#include <algorithm>
#include <cstring>

namespace aq::files {

namespace {

// The content after the status went out, read from the store as the client takes it: the host
// calls read() on a worker only when the connection has room, so a client that stops reading
// holds this object (what the store's reader buffers) and no thread.
class content_source : public aq::body_source {
public:
    content_source(std::unique_ptr<store::reader> reader, std::string first)
        : reader_(std::move(reader)), first_(std::move(first)) {}

    std::size_t read(std::span<char> buf) override {
        if (offset_ < first_.size()) {
            const std::size_t n = std::min(buf.size(), first_.size() - offset_);
            std::memcpy(buf.data(), first_.data() + offset_, n);
            offset_ += n;
            if (offset_ == first_.size()) std::string().swap(first_);
            return n;
        }
        // store::gone (the file deleted meanwhile) aborts the response.
        return reader_->read(buf);
    }

private:
    std::unique_ptr<store::reader> reader_;
    std::string first_;
    std::size_t offset_ = 0;
};

// The first piece is read before the status goes out, so that a file deleted between the lookup
// and here is still a clean 404 rather than an aborted 200.
constexpr std::size_t first_piece_bytes = 64 * 1024;

}  // namespace

void download(aq::request& req, store& files) {
    std::string id(req.param("file_id"));
    std::unique_ptr<store::reader> reader = files.open(req.owner(), id);
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

    try {
        reader->open_range(first, length);
    } catch (const store::gone&) {
        throw aq::http_error(404, "No such File object: " + id, "id");
    }
    if (int fd = reader->release_file(); fd >= 0) {
        req.respond_file(status, headers, fd, first, length);
        return;
    }
    std::string piece(static_cast<std::size_t>(std::min<std::uint64_t>(length, first_piece_bytes)), '\0');
    try {
        std::size_t got = 0;
        while (got < piece.size()) {
            std::size_t n = reader->read(std::span<char>(piece.data() + got, piece.size() - got));
            if (n == 0) break;
            got += n;
        }
        piece.resize(got);
    } catch (const store::gone&) {
        throw aq::http_error(404, "No such File object: " + id, "id");
    }
    req.respond_source(status, headers, static_cast<std::int64_t>(length),
                       std::make_unique<content_source>(std::move(reader), std::move(piece)));
}

}  // namespace aq::files
