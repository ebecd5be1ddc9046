#include "request_id.hpp"

#include <aqueduct/plugin.hpp>

namespace aqd {

bool acceptable_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > max_request_id_length) return false;
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.' || c == ':' || c == '+' || c == '=' || c == '/';
        if (!ok) return false;
    }
    return true;
}

std::string make_request_id() { return aq::random_id("req_", 24); }

}  // namespace aqd
