// Maps (method, path) to a plugin's handler.
//
// Patterns are literal segments and {params}: "/files/{file_id}/content". Every route also
// answers under "/v1" (the OpenAI SDKs put /v1 in their base URL, curl users often do not). A
// path that matches some route with another method is a 405 with an Allow header, not a 404.
// The table is filled during plugin init and read-only afterwards, so lookups take no lock.
#pragma once

#include "aqueduct/abi.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aqd {

struct route_target {
    aq_handler_fn handler = nullptr;
    void* ctx = nullptr;
    std::uint64_t max_body_bytes = 0;
    std::uint32_t flags = 0;
    std::string plugin;   // who registered it, for logs
    std::string pattern;  // as registered ("/files/{file_id}"), for metrics and the access log
    // The answer to a body over max_body_bytes (aq_route's body_limit_*); 0: 413, generic.
    int limit_status = 0;
    std::string limit_message;
    std::string limit_param;
};

struct route_error : std::runtime_error {
    enum kind_t { invalid_pattern, duplicate } kind;
    route_error(kind_t k, const std::string& what) : std::runtime_error(what), kind(k) {}
};

class router {
public:
    // Throws route_error: invalid_pattern (not starting with '/', empty or unbalanced {param},
    // a pattern starting with /v1) or duplicate (same method and same shape of pattern).
    void add(std::string_view method, std::string_view pattern, route_target target);

    enum class outcome { found, not_found, method_not_allowed };
    struct match {
        outcome result = outcome::not_found;
        const route_target* target = nullptr;
        std::vector<std::pair<std::string, std::string>> params;  // percent-decoded
        std::string allow;  // for method_not_allowed: "GET, DELETE"
    };

    // `path` is the request target without the query string.
    match find(std::string_view method, std::string_view path) const;

private:
    struct route {
        std::string method;
        std::vector<std::string> segments;  // "{name}" marks a parameter
        route_target target;
    };
    std::vector<route> routes_;
};

}  // namespace aqd
