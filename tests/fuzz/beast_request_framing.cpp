// frame_connection() as host/http_server.cpp frames requests today: Boost.Beast's parser with the
// host's options, read through the same Beast read algorithms (the synchronous ones share their
// parsing loop with the asynchronous ones the host calls), from a stream that hands out the
// input in the planned pieces.
#include "request_framing.hpp"

#include "invariant.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <limits>
#include <optional>

namespace aq::fuzz {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// A SyncReadStream over planned pieces: each read returns at most the rest of the current piece,
// as a socket returns what one TCP segment brought; then end of stream.
class piecewise_stream {
public:
    explicit piecewise_stream(const std::vector<std::string_view>& pieces) : pieces_(pieces) {}

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers) {
        beast::error_code ec;
        std::size_t n = read_some(buffers, ec);
        if (ec) throw beast::system_error(ec);
        return n;
    }

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
        ec = {};
        while (index_ < pieces_.size() && offset_ == pieces_[index_].size()) {
            ++index_;
            offset_ = 0;
        }
        if (index_ == pieces_.size()) {
            ec = asio::error::eof;
            return 0;
        }
        std::string_view rest = pieces_[index_].substr(offset_);
        std::size_t n = asio::buffer_copy(buffers, asio::buffer(rest.data(), rest.size()));
        offset_ += n;
        return n;
    }

private:
    const std::vector<std::string_view>& pieces_;
    std::size_t index_ = 0;
    std::size_t offset_ = 0;
};

}  // namespace

const char* to_string(framing_stop stop) {
    switch (stop) {
    case framing_stop::end_of_input: return "end_of_input";
    case framing_stop::not_keep_alive: return "not_keep_alive";
    case framing_stop::header_too_large: return "header_too_large";
    case framing_stop::malformed_header: return "malformed_header";
    case framing_stop::bad_target: return "bad_target";
    case framing_stop::length_too_large: return "length_too_large";
    case framing_stop::broken_body: return "broken_body";
    }
    return "?";
}

framing_result frame_connection(const std::vector<std::string_view>& pieces, const framing_limits& limits) {
    piecewise_stream stream(pieces);
    beast::flat_buffer buffer;  // one per connection: bytes after a request belong to the next
    std::string piece(limits.body_piece_bytes, '\0');
    framing_result out;

    for (;;) {
        // read_header() in the host.
        http::request_parser<http::buffer_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
        parser.body_limit(boost::none);
        beast::error_code ec;
        const std::size_t header_bytes = http::read_header(stream, buffer, parser, ec);
        // on_header() in the host.
        if (ec == http::error::end_of_stream || ec == asio::error::eof) {
            out.stop = framing_stop::end_of_input;
            return out;
        }
        if (ec == http::error::header_limit) {
            out.stop = framing_stop::header_too_large;
            out.error = ec.message();
            return out;
        }
        if (ec) {
            out.stop = framing_stop::malformed_header;
            out.error = ec.message();
            return out;
        }

        // handle_head() in the host.
        auto& req = parser.get();
        framed_request r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        r.header_bytes = header_bytes;
        r.wire_bytes = header_bytes;
        if (r.target.empty() || r.target.front() != '/') {
            out.stop = framing_stop::bad_target;
            return out;
        }
        r.keep_alive = req.keep_alive();
        r.chunked = parser.chunked();
        const auto length = parser.content_length();
        if (length && *length > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            out.stop = framing_stop::length_too_large;
            return out;
        }
        r.content_length = length ? static_cast<std::int64_t>(*length) : (r.chunked ? -1 : 0);
        r.body_expected = r.chunked || r.content_length > 0;
        // The host treats a request without body framing as complete after its header and parses
        // the next bytes as a new request: Beast must agree that nothing else belongs to this one.
        AQ_FUZZ_CHECK(r.body_expected || parser.is_done(),
                      "host expects no body but the parser is not done: " + r.method + " " + r.target);

        // read_body_piece() / on_body_piece() (or drain_body()) in the host.
        while (r.body_expected && !parser.is_done()) {
            auto& body = parser.get().body();
            body.data = piece.data();
            body.size = piece.size();
            r.wire_bytes += http::read(stream, buffer, parser, ec);
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {  // the host drops the piece and disconnects
                out.requests.push_back(std::move(r));
                out.stop = framing_stop::broken_body;
                out.error = ec.message();
                return out;
            }
            r.body.append(piece.data(), piece.size() - parser.get().body().size);
        }
        r.body_complete = parser.is_done();
        bool keep_alive = r.keep_alive;
        out.requests.push_back(std::move(r));
        if (!keep_alive) {
            out.stop = framing_stop::not_keep_alive;
            return out;
        }
    }
}

}  // namespace aq::fuzz
