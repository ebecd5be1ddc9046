// The seam between the request-framing fuzz target and the host: what the host's read side makes
// of the bytes a client sends on one connection.
//
// The implementation (decoder_request_framing.cpp) feeds the bytes to the host's own
// request_decoder (host/request_decoder.*, RFC 9112 framing: Transfer-Encoding, Content-Length,
// chunk syntax) with the connection's decisions around it: one decoder per request, the next
// request decoded from the bytes left over while the connection is kept alive. Bodies are
// consumed in full, whoever reads them (a handler or the drain after an early answer): framing
// is where one request ends and the next begins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aq::fuzz {

struct framing_limits {
    std::size_t max_header_bytes = 16 * 1024;  // config max_header_bytes
    std::size_t body_piece_bytes = 64 * 1024;  // the host's read_piece_bytes
};

// One request as the host would hand it on.
struct framed_request {
    std::string method;
    std::string target;
    std::size_t header_bytes = 0;     // request line and fields, as the parser consumed them
    std::size_t wire_bytes = 0;       // all the bytes of this request the parser consumed
    bool keep_alive = false;
    bool chunked = false;
    std::int64_t content_length = 0;  // as the host computes it: -1 for chunked
    bool body_expected = false;       // the host's has_body_
    std::string body;                 // bytes delivered to the reader
    bool body_complete = false;       // the parser reached the end of the message

    bool operator==(const framed_request&) const = default;
};

// Why the host stopped reading the connection.
enum class framing_stop {
    end_of_input,      // the client closed between requests
    not_keep_alive,    // the last request asked to close
    header_too_large,  // 431, connection closed
    malformed_header,  // 400, connection closed
    bad_target,        // 400 (target not starting with '/'), connection closed
    length_too_large,  // 413 (Content-Length over INT64_MAX), connection closed
    broken_body,       // the body could not be completed (truncated, bad chunk): disconnect
};

struct framing_result {
    std::vector<framed_request> requests;
    framing_stop stop = framing_stop::end_of_input;
    std::string error;  // the parser's message for the malformed/broken cases (for the log)

};

// Feeds `pieces` (the input as the socket delivers it, then end of stream) to the host's read side.
framing_result frame_connection(const std::vector<std::string_view>& pieces, const framing_limits& limits);

const char* to_string(framing_stop stop);

}  // namespace aq::fuzz
