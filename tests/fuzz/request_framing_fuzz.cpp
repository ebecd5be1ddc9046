// Fuzz target: the bytes of one client connection, framed into requests by the host's own
// request decoder (request_framing.hpp).
//
// Invariants, beyond "no crash, no sanitizer finding":
//   - the same requests, bodies and decision whether the bytes arrive at once or in random pieces
//     (TCP decides the pieces, not the client). The one latitude: a refusal may say 400 in one
//     run and 431 in the other when a line is both too long and malformed (which check sees it
//     first depends on where the read ended); both refuse the same request and close;
//   - a head within max_header_bytes is never refused as too large, and none over it gets through;
//   - a Content-Length body has exactly that many bytes; a chunked body is what body_bytes() says;
//   - only the last request of a connection may ask to close or be incomplete;
//   - every request that gets through keeps RFC 9112's framing rules: no Transfer-Encoding with
//     Content-Length, Transfer-Encoding only in HTTP/1.1 and ending with chunked, exactly one
//     Host in HTTP/1.1, no CR, LF or NUL in a field name or value.
#include "invariant.hpp"
#include "piece_plan.hpp"
#include "request_framing.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using namespace aq::fuzz;

bool same_decision(const framing_result& a, const framing_result& b) {
    if (a.requests != b.requests || a.stop != b.stop) return false;
    if (a.status == b.status) return true;
    const auto limit_or_malformed = [](int s) { return s == 400 || s == 431; };
    return limit_or_malformed(a.status) && limit_or_malformed(b.status);
}

std::string describe(const framing_result& r) {
    std::string s = std::string(to_string(r.stop)) + " " + std::to_string(r.status) + " (" + r.error + "), requests:";
    for (const auto& q : r.requests)
        s += " [" + q.method + " " + q.target + " head=" + std::to_string(q.header_bytes) +
             " wire=" + std::to_string(q.wire_bytes) + " cl=" + std::to_string(q.content_length) +
             (q.framing == framed_body::chunked ? " chunked" : "") + (q.keep_alive ? " keep-alive" : " close") +
             " body=" + std::to_string(q.body.size()) + (q.body_complete ? " complete" : " incomplete") + "]";
    return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool named(const std::string& name, std::string_view want) {
    if (name.size() != want.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (lower(name[i]) != want[i]) return false;
    return true;
}

// RFC 9112's framing rules, checked on a request the decoder let through.
void check_framing_rules(const framed_request& q, const framing_result& r) {
    std::size_t hosts = 0, te = 0, cl = 0;
    for (const auto& [name, value] : q.fields) {
        AQ_FUZZ_CHECK(!name.empty() && name.find_first_of(std::string_view("\r\n\0 :", 5)) == std::string::npos,
                      "field name '" + name + "': " + describe(r));
        AQ_FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos,
                      "field value of " + name + ": " + describe(r));
        hosts += named(name, "host");
        te += named(name, "transfer-encoding");
        cl += named(name, "content-length");
    }
    AQ_FUZZ_CHECK(!q.method.empty() && !q.target.empty(), describe(r));
    AQ_FUZZ_CHECK(q.version == 10 || q.version == 11, describe(r));
    if (q.version == 11) AQ_FUZZ_CHECK(hosts == 1, describe(r));
    AQ_FUZZ_CHECK(te == 0 || cl == 0, "Content-Length with Transfer-Encoding: " + describe(r));
    AQ_FUZZ_CHECK((te > 0) == (q.framing == framed_body::chunked), describe(r));
    if (te > 0) AQ_FUZZ_CHECK(q.version == 11, describe(r));
    if (q.framing == framed_body::length) AQ_FUZZ_CHECK(cl > 0 && q.content_length > 0, describe(r));
    if (q.framing == framed_body::none) AQ_FUZZ_CHECK(q.body.empty() && q.content_length == 0, describe(r));
    if (q.body_complete && q.framing == framed_body::length)
        AQ_FUZZ_CHECK(q.body.size() == q.content_length, describe(r));
    // Decoding only removes bytes (a refused request's wire bytes are not recorded: 0).
    if (q.wire_bytes) AQ_FUZZ_CHECK(q.header_bytes + q.body.size() <= q.wire_bytes, describe(r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    piece_plan plan(input);
    framing_limits limits;
    const std::size_t header_limits[] = {16 * 1024, 1024};  // the default and the smallest allowed
    limits.max_header_bytes = plan.pick(header_limits);

    const framing_result whole = frame_connection({input}, limits);
    const framing_result split = frame_connection(plan.cut(input), limits);
    AQ_FUZZ_CHECK(same_decision(whole, split), "whole: " + describe(whole) + "\n  split: " + describe(split));

    std::size_t offset = 0, body_bytes = 0;
    for (std::size_t i = 0; i < whole.requests.size(); ++i) {
        const framed_request& q = whole.requests[i];
        const bool last = i + 1 == whole.requests.size();
        AQ_FUZZ_CHECK(q.header_bytes <= limits.max_header_bytes, describe(whole));
        AQ_FUZZ_CHECK(input.substr(offset + q.header_bytes - 4, 4) == "\r\n\r\n", describe(whole));
        AQ_FUZZ_CHECK(last || (q.keep_alive && q.body_complete), describe(whole));
        check_framing_rules(q, whole);
        offset += q.wire_bytes;
        body_bytes += q.body.size();
    }
    AQ_FUZZ_CHECK(offset <= size && body_bytes <= size, describe(whole));
    if (whole.stop == framing_stop::refused && whole.status == 431 &&
        (whole.requests.empty() || whole.requests.back().body_complete)) {
        // Refused at a head: its end (if it has one) lies past the limit.
        const auto end = input.find("\r\n\r\n", offset);
        AQ_FUZZ_CHECK(end == std::string_view::npos || end + 4 - offset > limits.max_header_bytes,
                      "a head within the limit refused: " + describe(whole));
    }
    return 0;
}
