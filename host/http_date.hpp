// The Date header every response carries (RFC 9110 §6.6.1), in IMF-fixdate form:
// "Sun, 06 Nov 1994 08:49:37 GMT".
//
// Formatting costs a gmtime and a few dozen character stores; a busy I/O thread would do it for
// every response, so each thread keeps the text of the current second and formats again only
// when the second changes.
#pragma once

#include <ctime>
#include <string_view>

namespace aqd {

// The current time as IMF-fixdate. The view stays valid on the calling thread until its next call.
std::string_view http_date_now();

// `t` as IMF-fixdate into `out` (exactly 29 characters, no terminator needed).
void format_http_date(std::time_t t, char (&out)[29]);

}  // namespace aqd
