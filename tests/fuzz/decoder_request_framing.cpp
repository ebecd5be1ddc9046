// frame_connection() as host/connection.cpp frames requests: the host's own request_decoder
// (host/request_decoder.*), fed whatever each read returned, with the connection's decisions
// around it (consume(), on_head(), on_body_bytes()): a refused head ends the connection after
// its answer, a target that does not start with '/' is refused, a request without a body is
// complete after its head, a broken body disconnects, and the bytes after a complete request
// start the next one while the connection is kept alive.
#include "request_framing.hpp"

#include "invariant.hpp"
#include "request_decoder.hpp"

#include <algorithm>
#include <limits>
#include <memory>

namespace aq::fuzz {

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
    using aqd::request_decoder;
    framing_result out;
    std::unique_ptr<request_decoder> decoder;  // the request being read; null between requests
    framed_request r;
    bool head_taken = false;
    std::string decoded;
    for (std::string_view bytes : pieces) {
        while (!bytes.empty()) {
            if (!decoder) {  // begin_request()
                decoder = std::make_unique<request_decoder>(limits.max_header_bytes);
                r = {};
                head_taken = false;
            }
            // A body arrives in reads of at most the host's buffer; a head in whatever came.
            const std::string_view offered = head_taken ? bytes.substr(0, limits.body_piece_bytes) : bytes;
            decoded.clear();
            const std::size_t used = decoder->feed(offered, decoded);
            AQ_FUZZ_CHECK(used <= offered.size(), "the decoder consumed more than it was given");
            bytes.remove_prefix(used);
            const auto state = decoder->current();
            // What a failing call consumed depends on where the pieces were cut; the connection
            // closes after it either way.
            if (state != request_decoder::state::failed) r.wire_bytes += used;
            if (state == request_decoder::state::failed) {
                out.error = decoder->error().message;
                if (head_taken) {  // on_body_bytes(): answered if possible, then disconnect
                    r.body += decoded;
                    // How much of a broken body was consumed depends on the pieces (a chunk-size
                    // line taken in one read, or refused with the bad byte after it): nothing
                    // follows it on this connection, so only its head's bytes are counted.
                    r.wire_bytes = r.header_bytes;
                    out.requests.push_back(std::move(r));
                    out.stop = framing_stop::broken_body;
                } else {
                    const int status = decoder->error().status;
                    out.stop = status == 431   ? framing_stop::header_too_large
                               : status == 413 ? framing_stop::length_too_large
                                               : framing_stop::malformed_header;
                }
                return out;
            }
            if (state == request_decoder::state::head) {
                AQ_FUZZ_CHECK(used == offered.size(), "the decoder stopped inside a head it has not finished");
                continue;
            }
            if (!head_taken) {  // on_head()
                head_taken = true;
                const auto& h = decoder->head();
                r.method = h.method;
                r.target = h.target;
                r.header_bytes = r.wire_bytes;  // the decoder frees the head once parsed
                r.keep_alive = h.keep_alive;
                r.chunked = h.framing == aqd::body_framing::chunked;
                if (h.framing == aqd::body_framing::length &&
                    h.content_length > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                    out.stop = framing_stop::length_too_large;
                    return out;
                }
                r.content_length = r.chunked ? -1 : static_cast<std::int64_t>(h.content_length);
                r.body_expected = h.framing != aqd::body_framing::none;
                if (r.target.empty() || r.target.front() != '/') {
                    out.stop = framing_stop::bad_target;
                    return out;
                }
                // The host dispatches a request without body framing at once and parses what
                // follows as the next request: the decoder must agree it is complete.
                AQ_FUZZ_CHECK(r.body_expected || state == request_decoder::state::complete,
                              "no body framing, yet the decoder waits for a body: " + r.method + " " + r.target);
            }
            r.body += decoded;
            if (state == request_decoder::state::complete) {
                r.body_complete = true;
                AQ_FUZZ_CHECK(decoder->body_bytes() == r.body.size(), "body_bytes() differs from the bytes decoded");
                const bool keep_alive = r.keep_alive;
                out.requests.push_back(std::move(r));
                decoder.reset();
                if (!keep_alive) {
                    out.stop = framing_stop::not_keep_alive;
                    return out;
                }
            }
        }
    }
    // End of stream: between requests it is a client that is done; inside a head nothing was
    // handed on; inside a body the request was handed on and its body never ends.
    if (decoder && head_taken) {
        out.requests.push_back(std::move(r));
        out.stop = framing_stop::broken_body;
        out.error = "end of stream inside the body";
    }
    return out;
}

}  // namespace aq::fuzz
