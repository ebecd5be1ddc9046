// How long an upstream asks us to wait before the next request, from its rate-limit headers.
//
// `retry-after-ms` (milliseconds, OpenAI's) wins over `retry-after`, which RFC 9110 section
// 10.2.3 defines as delay-seconds or an HTTP-date. Numbers are read the way the OpenAI SDKs read
// them (a decimal floating-point number, so "1.5" and "1e3" count); anything that is not a
// finite, non-negative number or a valid date is ignored as if the header were absent. The
// result is capped (config max_retry_after_seconds), so a hostile or broken upstream cannot
// park a batch for days, and no value (inf, NaN, 1e300) reaches a float-to-integer conversion
// unbounded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace batches {

// The delay in milliseconds, at most max_ms; nullopt when neither header gives a usable value.
// now_s: the current Unix time, for dates. A date in the past means 0.
std::optional<long long> retry_after_delay_ms(const std::optional<std::string>& retry_after_ms,
                                              const std::optional<std::string>& retry_after, long long now_s,
                                              long long max_ms);

// An HTTP-date as Unix seconds: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the two
// obsolete forms RFC 9110 section 5.6.7 requires recipients to accept, rfc850-date
// ("Sunday, 06-Nov-94 08:49:37 GMT", a two-digit year more than 50 years ahead of now_s means
// the century before) and asctime-date ("Sun Nov  6 08:49:37 1994"). nullopt for anything else.
std::optional<long long> parse_http_date(std::string_view text, long long now_s);

}  // namespace batches
