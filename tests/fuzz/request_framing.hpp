// The seam between the request-framing fuzz target and the host: what the host's read side makes
// of the bytes a client sends on one connection.
//
// frame_connection() drives host/request_decoder.cpp exactly as host/connection.cpp does: one
// decoder per request, max_header_bytes from the config, whatever the socket returned fed in
// until the request is complete, refused or the input ends; the next request starts on the bytes
// left over while the connection is kept alive. Bodies are decoded in full, whoever reads them (a
// handler or the drain after an early answer): framing is where one request ends and the next
// begins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aq::fuzz {

struct framing_limits {
    std::size_t max_header_bytes = 16 * 1024;  // config max_header_bytes
};

enum class framed_body { none, length, chunked };

// One request as the host would hand it on.
struct framed_request {
    std::string method;
    std::string target;
    unsigned version = 11;
    std::vector<std::pair<std::string, std::string>> fields;
    std::size_t header_bytes = 0;  // the head: request line, fields and the empty line
    std::size_t wire_bytes = 0;    // all the bytes of this request the decoder consumed
    bool keep_alive = false;
    framed_body framing = framed_body::none;
    std::uint64_t content_length = 0;
    std::string body;            // decoded body bytes
    bool body_complete = false;  // the decoder reached the end of the request

    bool operator==(const framed_request&) const = default;
};

// Why the host stopped reading the connection.
enum class framing_stop {
    end_of_input,    // the client closed between requests
    not_keep_alive,  // the last request asked to close
    refused,         // the decoder refused a request: an answer with `status`, then close
    incomplete,      // the input ended inside a request
};

struct framing_result {
    // The complete requests, then an incomplete one whose head got through (its body refused, or
    // cut off by the end of the input).
    std::vector<framed_request> requests;
    framing_stop stop = framing_stop::end_of_input;
    int status = 0;     // with framing_stop::refused
    std::string error;  // the decoder's message (for the report)
};

// Feeds `pieces` (the input as the socket delivers it, then end of stream) to the host's read side.
framing_result frame_connection(const std::vector<std::string_view>& pieces, const framing_limits& limits);

const char* to_string(framing_stop stop);

}  // namespace aq::fuzz
