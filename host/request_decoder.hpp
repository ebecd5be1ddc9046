// Turns the bytes of one HTTP/1.1 request into a head and a body (RFC 9112), without a socket.
//
// The connection feeds it whatever the socket returned; tests and a fuzz target can feed it any
// bytes. It is strict where leniency lets two parsers disagree about where a request ends (the
// root of request smuggling, as in PortSwigger's CL.TE / TE.CL / TE.TE research):
//
//  - line endings are CRLF only: a bare LF or a bare CR in the head is refused at once;
//  - obs-fold (a field line starting with SP or HTAB), and whitespace before the first field, are
//    refused; so are control characters other than HTAB anywhere in the head;
//  - Transfer-Encoding must end with `chunked`, name it once, and name nothing before it (other
//    codings are not implemented: 501); HTTP/1.0 requests may not use it at all;
//  - Content-Length is 1*DIGIT (a list of equal values is one value); differing values, or
//    Content-Length together with Transfer-Encoding, are refused;
//  - HTTP/1.1 requests carry exactly one Host;
//  - chunk sizes are hex digits that fit 64 bits, chunk extensions and trailer fields follow
//    their grammar (no control characters, no bare CR or LF), and chunk data ends with CRLF.
//
// Every refusal closes the connection after the answer (framing_error), because the rest of the
// byte stream can no longer be trusted to start a request.
//
// Beast parses the request line and the fields once the head is complete and passed these
// checks (its types stay in the .cpp). Chunked bodies are decoded here: Beast's chunk parser
// lets a quoted chunk extension run on past CR LF, waiting for a closing quote.
#pragma once

#include "header_list.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aqd {

enum class body_framing { none, length, chunked };

struct request_line_and_fields {
    std::string method;
    std::string target;
    unsigned version = 11;  // 10 or 11
    header_list fields;
    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;  // with framing::length
    bool keep_alive = true;
    bool expect_continue = false;

    // The first field of that name (ASCII case-insensitive), or null.
    const std::string* field(std::string_view name) const;
};

// A request the decoder refuses. The answer is `status` with `message`; the connection closes.
struct framing_error {
    int status = 400;
    std::string message;
};

class request_decoder {
public:
    enum class state {
        head,      // collecting the head
        body,      // the head is done; body bytes follow
        complete,  // the request ended; feed() consumes nothing more
        failed,    // error() says why
    };

    explicit request_decoder(std::size_t max_header_bytes);
    ~request_decoder();
    request_decoder(const request_decoder&) = delete;
    request_decoder& operator=(const request_decoder&) = delete;

    // Consumes bytes and returns how many were used; bytes after the head, or after the end of
    // the request, are left for the caller (body bytes, or the next pipelined request). Decoded
    // body bytes are appended to `body`. After the head is complete feed() returns, so the
    // caller can look at it before any body byte is decoded.
    std::size_t feed(std::string_view bytes, std::string& body);
    // The same, without copying a Content-Length body: this call's decoded body bytes are
    // `piece`, a view of `bytes` for a Content-Length body, or of `scratch` (cleared first) for
    // a chunked one. The connection's path: a large upload's bytes are not copied once more.
    std::size_t feed(std::string_view bytes, std::string& scratch, std::string_view& piece);

    state current() const noexcept { return state_; }
    // Bytes of the head received so far (0 before the first byte).
    std::size_t head_bytes() const noexcept { return head_.size(); }
    const request_line_and_fields& head() const noexcept { return parsed_; }
    const framing_error& error() const noexcept { return error_; }
    std::uint64_t body_bytes() const noexcept { return body_bytes_; }

    // The longest chunk-size line (size and extensions) accepted.
    static constexpr std::size_t max_chunk_line = 4096;

private:
    // Where a chunked body is: a chunk-size line, chunk data, the CRLF after the data, or the
    // trailer section.
    enum class chunk_part { size_line, data, data_end, trailer };

    std::size_t feed_head(std::string_view bytes);
    std::size_t feed_chunked(std::string_view bytes, std::string& body);
    bool check_head_bytes(std::size_t from);
    void parse_head();
    void line_complete();
    void fail(int status, std::string message);

    const std::size_t max_header_bytes_;
    state state_ = state::head;
    std::string head_;  // the head so far (until the empty line)
    request_line_and_fields parsed_;
    framing_error error_;
    std::uint64_t body_bytes_ = 0;

    chunk_part chunk_ = chunk_part::size_line;
    std::string line_;               // the chunk-size or trailer line so far, or the data's CRLF
    std::uint64_t chunk_left_ = 0;   // data bytes left in the current chunk
    std::size_t trailer_bytes_ = 0;  // bytes of the trailer section so far
};

}  // namespace aqd
