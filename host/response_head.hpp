// The bytes of a response's status line and header section (RFC 9112 §4, §5).
//
// The host writes responses itself rather than through Beast's serializer: it sends file bodies
// with sendfile(2) and pulled bodies chunk by chunk, and it must never throw on an I/O thread.
// The header fields passed in were validated on the handler thread (response_rules); this file
// adds what the host owns: Date, Server, x-request-id, the framing (Content-Length or
// Transfer-Encoding) and Connection.
#pragma once

#include "header_list.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace aqd {

enum class response_framing {
    none,         // no body at all (204, 304): no Content-Length either
    length,       // Content-Length
    chunked,      // Transfer-Encoding: chunked
    until_close,  // an HTTP/1.0 client and no known length: the body ends when the connection does
};

struct response_head {
    int status = 200;
    const header_list* headers = nullptr;  // may be null
    response_framing framing = response_framing::length;
    std::uint64_t length = 0;  // with framing::length
    bool keep_alive = true;
    bool http10 = false;  // the request was HTTP/1.0: keep-alive must be announced
    std::string_view request_id;

    std::string serialize() const;
};

// A whole answer after which the connection closes: the head (with a fresh request id) and
// `body`. For refusals written with one non-blocking send where no request state exists: over a
// connection limit, or plain HTTP on the TLS port.
std::string closing_answer(int status, const header_list& headers, std::string_view body);

// The standard reason phrase, or "" for a code without one (the reason phrase is optional).
std::string_view reason_phrase(int status);

// The interim response that tells a client waiting on Expect: 100-continue to send its body.
inline constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

// How a streamed body of unknown length is framed for this request.
inline response_framing unknown_length_framing(bool http10) {
    return http10 ? response_framing::until_close : response_framing::chunked;
}

}  // namespace aqd
