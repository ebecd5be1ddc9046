// Fuzz target: the bytes of one client connection, framed into requests by the host's own
// request_decoder as the connection drives it (request_framing.hpp).
//
// Invariants, beyond "no crash, no sanitizer finding":
//   - the same requests, bodies and decision whether the bytes arrive at once or in random
//     pieces (TCP decides the pieces, not the client). A refused header is one decision (an
//     error answer, then close) whatever its status (400, 413, 431, 501, 505): a head cut short
//     by the end of input is refused as incomplete in one plan and may be refused for a bad byte
//     in another. Likewise a broken body is one decision whatever the message;
//   - a header within max_header_bytes is never refused as too large, and none over it gets
//     through (the decoder counts the head itself, so the limit is exact; Beast's header_limit,
//     which the host used before, was approximate and depended on the pieces);
//   - a complete Content-Length body has exactly that many bytes;
//   - only the last request of a connection may ask to close or be incomplete;
//   - what the host assumes about the parser holds (checked in frame_connection()).
#include "invariant.hpp"
#include "piece_plan.hpp"
#include "request_framing.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using namespace aq::fuzz;

// Refused at the header: an error answer (431, 400 or 413), then close.
bool refused_header(framing_stop s) {
    return s == framing_stop::header_too_large || s == framing_stop::malformed_header || s == framing_stop::bad_target ||
           s == framing_stop::length_too_large;
}

// What the host does about the connection, with the refusals that only differ in their message
// or status taken as one.
bool same_decision(const framing_result& a, const framing_result& b) {
    if (a.requests != b.requests) return false;
    if (refused_header(a.stop) || refused_header(b.stop)) return refused_header(a.stop) && refused_header(b.stop);
    return a.stop == b.stop;
}

std::string describe(const framing_result& r) {
    std::string s = std::string(to_string(r.stop)) + " (" + r.error + "), requests:";
    for (const auto& q : r.requests)
        s += " [" + q.method + " " + q.target + " header=" + std::to_string(q.header_bytes) + " cl=" + std::to_string(q.content_length) +
             (q.chunked ? " chunked" : "") + (q.keep_alive ? " keep-alive" : " close") + " body=" +
             std::to_string(q.body.size()) + (q.body_complete ? " complete" : " incomplete") + "]";
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    piece_plan plan(input);
    framing_limits limits;
    const std::size_t header_limits[] = {16 * 1024, 1024};  // the default and the smallest allowed
    const std::size_t body_pieces[] = {64 * 1024, 4096, 7, 1};
    limits.max_header_bytes = plan.pick(header_limits);
    limits.body_piece_bytes = plan.pick(body_pieces);

    const framing_result whole = frame_connection({input}, limits);
    const framing_result split = frame_connection(plan.cut(input), limits);
    AQ_FUZZ_CHECK(same_decision(whole, split), "whole: " + describe(whole) + "\n  split: " + describe(split));

    for (const framing_result* r : {&whole, &split}) {
        std::size_t offset = 0;
        for (const framed_request& q : r->requests) {
            AQ_FUZZ_CHECK(q.header_bytes <= limits.max_header_bytes, describe(*r));
            offset += q.wire_bytes;
        }
        AQ_FUZZ_CHECK(offset <= size, describe(*r));
        if (r->stop == framing_stop::header_too_large) {
            const auto end = input.find("\r\n\r\n", offset);
            AQ_FUZZ_CHECK(end == std::string_view::npos || end + 4 - offset > limits.max_header_bytes,
                          "a header within the limit refused: " + describe(*r));
        }
    }

    std::size_t body_bytes = 0;
    for (std::size_t i = 0; i < whole.requests.size(); ++i) {
        const framed_request& r = whole.requests[i];
        const bool last = i + 1 == whole.requests.size();
        AQ_FUZZ_CHECK(!r.method.empty() && !r.target.empty() && r.target.front() == '/', describe(whole));
        AQ_FUZZ_CHECK(last || (r.keep_alive && r.body_complete), describe(whole));
        if (r.body_complete && !r.chunked)
            AQ_FUZZ_CHECK(r.body.size() == static_cast<std::uint64_t>(r.content_length), describe(whole));
        if (!r.body_expected) AQ_FUZZ_CHECK(r.body.empty(), describe(whole));
        body_bytes += r.body.size();
    }
    AQ_FUZZ_CHECK(body_bytes <= size, describe(whole));
    return 0;
}
