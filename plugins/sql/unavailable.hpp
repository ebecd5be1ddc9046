// The database cannot serve this request now: every session stayed busy for the configured wait,
// or the server cannot be reached (down, restarting, refusing connections), or a connection broke
// during the request's statements. Nothing the request wrote is committed.
//
// Plugins answer it with 503, code `database_unavailable` and `retry-after` (API.md), which the
// OpenAI SDKs retry: to_http_error() builds that answer. The message a client sees is fixed; the
// cause (never a password or a bound value) is in what(), for the log.
#pragma once

#include <aqueduct/plugin.hpp>

#include <stdexcept>
#include <string>

namespace aq::sql {

class unavailable : public std::runtime_error {
public:
    enum class reason { busy, unreachable };

    unavailable(reason why, const std::string& detail, int retry_after_seconds)
        : std::runtime_error(detail), why_(why), retry_after_(retry_after_seconds < 1 ? 1 : retry_after_seconds) {}

    reason why() const noexcept { return why_; }
    int retry_after_seconds() const noexcept { return retry_after_; }

private:
    reason why_;
    int retry_after_;
};

// 503 {"error": {"message", "type": "server_error", "param": null, "code": "database_unavailable"}}
// with retry-after.
inline aq::http_error to_http_error(const unavailable& e) {
    aq::http_error out(503,
                       e.why() == unavailable::reason::busy
                           ? "The database is busy; retry later."
                           : "The database is unavailable; retry later.",
                       {}, "database_unavailable");
    return out.with_retry_after(e.retry_after_seconds());
}

}  // namespace aq::sql
