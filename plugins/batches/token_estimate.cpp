#include "token_estimate.hpp"

#include "rate_allowance.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdint>

namespace batches {

namespace json = boost::json;

namespace {

// Bytes of every string in `v`, however nested (content parts, tool calls' arguments).
long long string_bytes(const json::value& v) {
    if (v.is_string()) return static_cast<long long>(v.as_string().size());
    long long n = 0;
    if (v.is_array())
        for (const auto& e : v.as_array()) n += string_bytes(e);
    else if (v.is_object())
        for (const auto& [k, e] : v.as_object()) n += string_bytes(e);
    return n;
}

}  // namespace

long long estimate_tokens(std::string_view endpoint, std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    // Validation stored only JSON objects; anything else counts as the default alone.
    if (ec || !v.is_object()) return default_completion_tokens;
    const auto& o = v.as_object();
    long long prompt = 0;
    for (const char* key : {"messages", "prompt", "input", "instructions"})
        if (const auto* p = o.if_contains(key)) prompt += string_bytes(*p);
    long long completion = endpoint.ends_with("/embeddings") ? 0 : default_completion_tokens;
    for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"})
        if (const auto* m = o.if_contains(key); m && (m->is_int64() || m->is_uint64())) {
            // Clamped: a body may say anything, and the sum must not overflow.
            constexpr long long most = 1'000'000'000'000;
            completion = m->is_int64() ? std::clamp<long long>(m->as_int64(), 0, most)
                                       : static_cast<long long>(std::min<std::uint64_t>(m->as_uint64(), most));
            break;
        }
    return (prompt + 3) / 4 + completion;
}

}  // namespace batches
