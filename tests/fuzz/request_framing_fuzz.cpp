// Fuzz target: the bytes of one client connection, framed into requests as the host frames them
// (request_framing.hpp).
//
// Invariants, beyond "no crash, no sanitizer finding":
//   - the same requests, bodies and decision whether the bytes arrive at once or in random
//     pieces (TCP decides the pieces, not the client). A refused header is one decision (an
//     error answer, then close) whatever its status (400, 413 or 431): Beast parses an
//     incomplete header again only once its end has arrived, so whether a bad byte is reported
//     as such, as an incomplete message at end of input or as a header over the limit depends
//     on the pieces (found by this target; the connection is refused and closed at the same
//     request either way). Likewise a broken body is one decision whatever the parser's message;
//   - a header within max_header_bytes is never refused as too large, and none over three times
//     that gets through. In between, Beast's header_limit is approximate and depends on the
//     pieces (found by this target): the limit applies from where the parser resumes, and the
//     request line and the fields complete in earlier reads are already consumed, so the request
//     line, a first window of fields and the rest may each take up to the limit;
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

// Beast's approximate header_limit: `refused` stopped with a 431 at a request that `accepted`
// took, whose header is over the limit (and within three times it, checked for every request).
bool header_limit_leniency(const framing_result& refused, const framing_result& accepted, std::size_t limit) {
    const std::size_t k = refused.requests.size();
    if (refused.stop != framing_stop::header_too_large || accepted.requests.size() <= k) return false;
    if (!std::equal(refused.requests.begin(), refused.requests.end(), accepted.requests.begin())) return false;
    return accepted.requests[k].header_bytes > limit;
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
    AQ_FUZZ_CHECK(same_decision(whole, split) || header_limit_leniency(whole, split, limits.max_header_bytes) ||
                      header_limit_leniency(split, whole, limits.max_header_bytes),
                  "whole: " + describe(whole) + "\n  split: " + describe(split));

    for (const framing_result* r : {&whole, &split}) {
        std::size_t offset = 0;
        for (const framed_request& q : r->requests) {
            AQ_FUZZ_CHECK(q.header_bytes <= 3 * limits.max_header_bytes, describe(*r));
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
