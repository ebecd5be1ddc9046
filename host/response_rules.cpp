#include "response_rules.hpp"

#include "ascii.hpp"

#include <aqueduct/plugin.hpp>

namespace aqd {

namespace {


// Header fields the host writes itself: framing, connection management, and what it adds to
// every response. A plugin's copy would contradict the host's (two Content-Lengths are exactly
// what request smuggling feeds on).
constexpr std::string_view host_owned[] = {"content-length", "transfer-encoding", "connection", "keep-alive",
                                           "upgrade",        "te",                "trailer",    "date",
                                           "server",         "x-request-id"};

// Printable for a log line: the first bytes, control characters as \xNN.
std::string shown(std::string_view s) {
    std::string out;
    for (unsigned char c : s.substr(0, 40)) {
        if (c < 0x20 || c == 0x7f) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > 40) out += "...";
    return out;
}

}  // namespace

std::optional<std::string> check_status(int status) {
    if (status < 200 || status > 599) return "status " + std::to_string(status) + " is outside 200..599";
    return std::nullopt;
}

std::optional<std::string> check_body(int status, std::int64_t length) {
    if (!status_allows_body(status) && length != 0)
        return "status " + std::to_string(status) + " may not carry a body";
    return std::nullopt;
}

std::optional<std::string> check_headers(const aq_header* headers, std::size_t count) {
    if (count > max_response_headers)
        return std::to_string(count) + " header fields (at most " + std::to_string(max_response_headers) + ")";
    if (count && !headers) return std::string("header count without headers");
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string_view name = aq::to_sv(headers[i].name);
        const std::string_view value = aq::to_sv(headers[i].value);
        if (name.empty()) return std::string("an empty header name");
        if (headers[i].name.len && !headers[i].name.data) return std::string("a header name without data");
        if (headers[i].value.len && !headers[i].value.data) return std::string("a header value without data");
        if (name.size() > max_response_header_name)
            return "header name " + shown(name) + " longer than " + std::to_string(max_response_header_name) + " bytes";
        for (unsigned char c : name)
            if (!is_tchar(c)) return "header name " + shown(name) + " is not a token";
        for (auto owned : host_owned)
            if (iequals(name, owned)) return "header " + std::string(name) + " is set by the host";
        if (value.size() > max_response_header_value)
            return "header " + std::string(name) + " has a value of " + std::to_string(value.size()) +
                   " bytes (at most " + std::to_string(max_response_header_value) + ")";
        for (unsigned char c : value)
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return "header " + std::string(name) + " has a control character in its value: " + shown(value);
        total += name.size() + value.size() + 4;
    }
    if (total > max_response_header_bytes)
        return "header fields of " + std::to_string(total) + " bytes (at most " +
               std::to_string(max_response_header_bytes) + ")";
    return std::nullopt;
}

}  // namespace aqd
