#include "router.hpp"

#include <aqueduct/plugin.hpp>

#include <algorithm>
#include <optional>
#include <set>

namespace aqd {

namespace {

bool is_param(std::string_view segment) {
    return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

// "/a/b/" -> {"a", "b", ""}; "/" -> {}. The caller has checked the leading '/'.
std::vector<std::string_view> split(std::string_view path) {
    std::vector<std::string_view> out;
    if (path.size() <= 1) return out;
    std::size_t start = 1;
    while (true) {
        const std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) {
            out.push_back(path.substr(start));
            return out;
        }
        out.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
}

// Percent-decoding of a path segment. '+' stays '+': form encoding does not apply to paths.
std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) return std::nullopt;  // truncated escape
        const int hi = aq::hex_value(in[i + 1]);
        const int lo = aq::hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
        i += 2;
    }
    return out;
}

bool valid_method(std::string_view method) {
    if (method.empty()) return false;
    return std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace

void router::add(std::string_view method, std::string_view pattern, route_target target) {
    const auto invalid = [&](std::string_view why) {
        return route_error(route_error::invalid_pattern,
                           "route " + std::string(method) + " " + std::string(pattern) + ": " + std::string(why));
    };
    if (!valid_method(method)) throw invalid("method must be an uppercase HTTP method");
    if (pattern.empty() || pattern.front() != '/') throw invalid("pattern must start with '/'");

    route r;
    r.method = std::string(method);
    std::set<std::string_view> names;
    for (const std::string_view seg : split(pattern)) {
        if (seg.empty()) throw invalid("empty path segment");
        if (is_param(seg)) {
            const std::string_view name = seg.substr(1, seg.size() - 2);
            if (name.find_first_of("{}/") != std::string_view::npos) throw invalid("malformed {param}");
            if (!names.insert(name).second) throw invalid("parameter {" + std::string(name) + "} appears twice");
        } else if (seg.find_first_of("{}") != std::string_view::npos) {
            throw invalid(seg == "{}" ? "empty {param} name" : "unbalanced or embedded {param}");
        }
        r.segments.emplace_back(seg);
    }
    // Every route already answers under /v1; a pattern that spells it would answer /v1/v1/...
    if (!r.segments.empty() && r.segments.front() == "v1") throw invalid("must not start with /v1 (added automatically)");

    for (const route& other : routes_) {
        if (other.method != r.method || other.segments.size() != r.segments.size()) continue;
        bool same_shape = true;
        for (std::size_t i = 0; i < r.segments.size() && same_shape; ++i) {
            const bool p1 = is_param(r.segments[i]), p2 = is_param(other.segments[i]);
            same_shape = p1 == p2 && (p1 || r.segments[i] == other.segments[i]);
        }
        if (same_shape) {
            throw route_error(route_error::duplicate,
                              "route " + r.method + " " + std::string(pattern) + " is already registered" +
                                  (other.target.plugin.empty() ? "" : " by plugin " + other.target.plugin));
        }
    }
    r.target = std::move(target);
    r.target.pattern = std::string(pattern);
    routes_.push_back(std::move(r));
}

router::match router::find(std::string_view method, std::string_view path) const {
    match m;
    if (path.empty() || path.front() != '/') return m;

    std::vector<std::string_view> segs = split(path);
    if (!segs.empty() && segs.front() == "v1") segs.erase(segs.begin());
    // Lenient about one trailing slash: "/files/" is "/files", and "/v1/" is "/".
    if (!segs.empty() && segs.back().empty()) segs.pop_back();

    // Among the routes that match the path, a literal segment beats a parameter at the first
    // position where two routes differ, so "/batches/stats" wins over "/batches/{id}" whatever
    // the registration order.
    const auto more_specific = [](const route& a, const route& b) {
        for (std::size_t i = 0; i < a.segments.size(); ++i) {
            const bool pa = is_param(a.segments[i]), pb = is_param(b.segments[i]);
            if (pa != pb) return !pa;
        }
        return false;
    };

    const route* best = nullptr;
    std::set<std::string> allowed;
    for (const route& r : routes_) {
        if (r.segments.size() != segs.size()) continue;
        bool ok = true;
        for (std::size_t i = 0; i < segs.size() && ok; ++i)
            ok = is_param(r.segments[i]) ? !segs[i].empty() : r.segments[i] == segs[i];
        if (!ok) continue;
        if (r.method != method) {
            allowed.insert(r.method);
            continue;
        }
        if (!best || more_specific(r, *best)) best = &r;
    }

    if (best) {
        for (std::size_t i = 0; i < segs.size(); ++i) {
            if (!is_param(best->segments[i])) continue;
            std::optional<std::string> value = percent_decode(segs[i]);
            if (!value) return match{};  // a malformed escape names no resource
            const std::string& seg = best->segments[i];
            m.params.emplace_back(seg.substr(1, seg.size() - 2), std::move(*value));
        }
        m.result = outcome::found;
        m.target = &best->target;
        return m;
    }
    if (!allowed.empty()) {
        m.result = outcome::method_not_allowed;
        for (const std::string& a : allowed) {
            if (!m.allow.empty()) m.allow += ", ";
            m.allow += a;
        }
    }
    return m;
}

}  // namespace aqd
