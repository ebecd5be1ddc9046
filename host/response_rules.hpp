// What a plugin may put in a response, checked on the handler thread before anything reaches
// an I/O thread (abi.h lists the rules for plugin authors).
//
// A plugin is code the host does not control. Without these checks a 204 with a body, a 64 KiB
// header value or a CR LF inside a value reached the serializer, which either threw on an I/O
// thread (std::terminate, the whole host gone) or wrote what the plugin asked: response
// splitting. Each check returns what is wrong, in words for the log, or nothing.
#pragma once

#include "aqueduct/abi.h"

#include <cstdint>
#include <optional>
#include <string>

namespace aqd {

// Limits on one response's header fields.
inline constexpr std::size_t max_response_headers = 100;
inline constexpr std::size_t max_response_header_name = 256;
inline constexpr std::size_t max_response_header_value = 8192;
inline constexpr std::size_t max_response_header_bytes = 64 * 1024;

std::optional<std::string> check_status(int status);
std::optional<std::string> check_headers(const aq_header* headers, std::size_t count);
// 204 and 304 never carry a body (RFC 9110 §15.3.5, §15.4.5).
inline bool status_allows_body(int status) { return status != 204 && status != 304; }
// A response of `status` with a body of `length` bytes (-1: unknown).
std::optional<std::string> check_body(int status, std::int64_t length);

}  // namespace aqd
