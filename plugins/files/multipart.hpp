// An incremental multipart/form-data parser (RFC 7578 / RFC 2046).
//
// The body is pushed in chunks of any size, split anywhere (inside a boundary, a header, a CRLF):
// the parser keeps only the few bytes that might still be the start of a delimiter, so memory is
// bounded by the largest chunk plus the header limit, whatever the size of the parts. Part data
// is handed out as it arrives through on_data; a part's headers are parsed in full (up to
// max_header_bytes) before on_begin.
//
// Errors throw multipart::error with a message fit for a 400 response.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aq::files {

class multipart {
public:
    struct error : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    // A part's Content-Disposition and Content-Type. `filename` is the decoded filename* (RFC
    // 5987, UTF-8) when present, else the quoted/token filename with backslash escapes removed;
    // nullopt when the part has none (a plain form field).
    struct part {
        std::string name;
        std::optional<std::string> filename;
        std::string content_type;
    };

    struct callbacks {
        std::function<void(const part&)> on_begin;
        std::function<void(std::string_view)> on_data;
        std::function<void()> on_end;
    };

    multipart(std::string_view boundary, callbacks cb, std::size_t max_header_bytes = 16 * 1024);

    // Feeds the next bytes of the body. Throws multipart::error.
    void push(std::string_view chunk);
    // Declares the end of the body; throws when the closing boundary was not seen.
    void finish();
    // True once the closing boundary has been parsed (the epilogue is ignored).
    bool done() const noexcept { return state_ == state::epilogue; }

    // The boundary parameter of a multipart/form-data Content-Type, nullopt when the type is
    // something else or has no usable boundary.
    static std::optional<std::string> boundary_of(std::string_view content_type);

private:
    enum class state { preamble, after_boundary, headers, body, epilogue };

    void parse_headers(std::string_view block);

    std::string delimiter_;  // "\r\n--" + boundary
    callbacks cb_;
    std::size_t max_header_bytes_;
    state state_ = state::preamble;
    std::string pending_;    // bytes not yet consumed
};

}  // namespace aq::files
