#include "byte_range.hpp"

#include <charconv>
#include <optional>

namespace aq::files {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::optional<std::uint64_t> number(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

byte_range byte_range::parse(std::string_view header, std::uint64_t size) {
    byte_range whole;
    header = trim(header);
    if (header.size() < 6 || header.substr(0, 6) != "bytes=") return whole;
    std::string_view spec = trim(header.substr(6));
    if (spec.find(',') != std::string_view::npos) return whole;  // multiple ranges: send it all
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) return whole;
    std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
    byte_range r;
    r.result = kind::partial;
    if (a.empty()) {  // suffix: the last n bytes
        auto n = number(b);
        if (!n) return whole;
        if (*n == 0 || size == 0) return {kind::unsatisfiable, 0, 0};
        r.first = *n >= size ? 0 : size - *n;
        r.last = size - 1;
        return r;
    }
    auto first = number(a);
    if (!first) return whole;
    std::optional<std::uint64_t> last;
    if (!b.empty()) {
        last = number(b);
        if (!last || *last < *first) return whole;  // invalid: ignored
    }
    if (*first >= size) return {kind::unsatisfiable, 0, 0};
    r.first = *first;
    r.last = last && *last < size ? *last : size - 1;
    return r;
}

}  // namespace aq::files
