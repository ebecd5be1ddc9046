// Request ids: one per request, in the x-request-id response header, on every log line the
// request causes (log::request_scope) and in the access log.
//
// A client (or a proxy in front of the gateway) may bring its own id in x-request-id, so one id
// follows a request through every hop. It is kept when it is sane: 1 to max_length characters
// from a safe set (letters, digits and - _ . : + = /), so it can go into log lines, JSON and
// upstream headers without escaping; anything else is replaced by a generated "req_" id.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace aqd {

inline constexpr std::size_t max_request_id_length = 128;

// True when an incoming x-request-id may be kept as it is.
bool acceptable_request_id(std::string_view id) noexcept;

// A fresh id: "req_" and 24 random base62 characters.
std::string make_request_id();

}  // namespace aqd
