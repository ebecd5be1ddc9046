// Fuzz target: host/router.cpp, route registration and lookup with percent-decoded parameters.
//
// Input: lines. "+METHOD PATTERN" registers a route, "?METHOD PATH" looks a path up; other lines
// are ignored. Every registered route is also looked up through a path made from its pattern,
// with each parameter filled by percent-encoded bytes of the input, with and without "/v1" and
// a trailing slash.
//
// The oracle is a model of the rules router.hpp states, written independently of router.cpp:
//   - a pattern is '/' and non-empty segments, literal or {name} (unique names, no braces
//     elsewhere), not starting with /v1; a method is uppercase letters; the same method and the
//     same shape (literal/param positions and literals) is a duplicate;
//   - a path matches with one optional "/v1" prefix and one optional trailing slash; a parameter
//     takes any non-empty segment; among matching routes of the method the one with a literal at
//     the first position where they differ wins; its parameters are percent-decoded ('+' stays),
//     and a malformed escape makes the path not found;
//   - a path that matches only routes of other methods is a 405 listing them, sorted, ", ".
// Every lookup must agree with the model exactly; every registration must succeed or fail as
// the model says.
#include "invariant.hpp"

#include "router.hpp"

#include <aqueduct/plugin.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

using aqd::route_error;
using aqd::router;
using outcome = aqd::router::outcome;

struct model_route {
    std::string method;
    std::vector<std::string> segments;
    std::string id;
};

bool param(const std::string& s) { return s.size() >= 3 && s.front() == '{' && s.back() == '}'; }

// "/a//b/" -> {"a", "", "b", ""}; "/" -> {}.
std::vector<std::string> segments_of(std::string_view path) {
    std::vector<std::string> out;
    if (path.size() <= 1) return out;
    std::string current;
    for (char c : path.substr(1)) {
        if (c == '/') {
            out.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    out.push_back(current);
    return out;
}

bool hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool well_formed_escapes(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == '%' && !(i + 2 < s.size() && hex_digit(s[i + 1]) && hex_digit(s[i + 2]))) return false;
    return true;
}

enum class verdict { ok, invalid, duplicate };

class model {
public:
    verdict add(std::string_view method, std::string_view pattern, const std::string& id) {
        if (method.empty() || !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
            return verdict::invalid;
        if (pattern.empty() || pattern.front() != '/') return verdict::invalid;
        model_route r{std::string(method), segments_of(pattern), id};
        std::set<std::string> names;
        for (const std::string& s : r.segments) {
            if (s.empty()) return verdict::invalid;
            if (param(s)) {
                std::string name = s.substr(1, s.size() - 2);
                if (name.find_first_of("{}") != std::string::npos || !names.insert(name).second) return verdict::invalid;
            } else if (s.find_first_of("{}") != std::string::npos) {
                return verdict::invalid;
            }
        }
        if (!r.segments.empty() && r.segments.front() == "v1") return verdict::invalid;
        for (const model_route& o : routes_)
            if (o.method == r.method && shape(o) == shape(r)) return verdict::duplicate;
        routes_.push_back(std::move(r));
        return verdict::ok;
    }

    router::match find(std::string_view method, std::string_view path) const {
        router::match m;
        if (path.empty() || path.front() != '/') return m;
        std::vector<std::string> segs = segments_of(path);
        if (!segs.empty() && segs.front() == "v1") segs.erase(segs.begin());
        if (!segs.empty() && segs.back().empty()) segs.pop_back();

        const model_route* best = nullptr;
        std::set<std::string> others;
        for (const model_route& r : routes_) {
            if (r.segments.size() != segs.size()) continue;
            bool matches = true;
            for (std::size_t i = 0; i < segs.size() && matches; ++i)
                matches = param(r.segments[i]) ? !segs[i].empty() : r.segments[i] == segs[i];
            if (!matches) continue;
            if (r.method != method) {
                others.insert(r.method);
            } else if (!best || params_of(r) < params_of(*best)) {
                best = &r;
            }
        }
        if (best) {
            for (std::size_t i = 0; i < segs.size(); ++i) {
                if (!param(best->segments[i])) continue;
                if (!well_formed_escapes(segs[i])) return router::match{};
                const std::string& s = best->segments[i];
                m.params.emplace_back(s.substr(1, s.size() - 2), aq::percent_decode(segs[i], false));
            }
            m.result = outcome::found;
            route_id = best->id;
            return m;
        }
        if (!others.empty()) {
            m.result = outcome::method_not_allowed;
            for (const std::string& o : others) m.allow += (m.allow.empty() ? "" : ", ") + o;
        }
        return m;
    }

    const std::vector<model_route>& routes() const { return routes_; }
    mutable std::string route_id;  // of the last route find() found

private:
    // Literal/param positions and the literals: what makes two patterns the same route.
    static std::vector<std::string> shape(const model_route& r) {
        std::vector<std::string> out;
        for (const std::string& s : r.segments) out.push_back(param(s) ? "{}" : "=" + s);
        return out;
    }
    // Where the parameters are: lexicographically smaller is more specific (a literal first).
    static std::vector<bool> params_of(const model_route& r) {
        std::vector<bool> out;
        for (const std::string& s : r.segments) out.push_back(param(s));
        return out;
    }

    std::vector<model_route> routes_;
};

const char* name(outcome o) {
    return o == outcome::found ? "found" : o == outcome::not_found ? "not_found" : "method_not_allowed";
}

std::string describe(const router::match& m, const std::string& id) {
    std::string s = name(m.result);
    if (m.result == outcome::found) s += " route " + id;
    for (const auto& [k, v] : m.params) s += " " + k + "=" + v;
    if (!m.allow.empty()) s += " allow " + m.allow;
    return s;
}

void compare(const router& r, const model& expected, std::string_view method, std::string_view path) {
    const router::match got = r.find(method, path);
    const router::match want = expected.find(method, path);
    const std::string got_id = got.target ? got.target->plugin : "";
    const std::string want_id = want.result == outcome::found ? expected.route_id : "";
    AQ_FUZZ_CHECK(got.result == want.result && got_id == want_id && got.params == want.params && got.allow == want.allow,
                  std::string(method) + " " + std::string(path) + ": router " + describe(got, got_id) + ", model " +
                      describe(want, want_id));
    AQ_FUZZ_CHECK((got.target != nullptr) == (got.result == outcome::found), "target set without a match");
}

std::string percent_encoded(std::string_view bytes) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : bytes) {
        out += '%';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    router r;
    model expected;
    std::vector<std::pair<std::string, std::string>> lookups;

    for (std::size_t line_no = 0; !input.empty() && line_no < 256; ++line_no) {
        const auto nl = input.find('\n');
        std::string_view line = input.substr(0, nl);
        input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
        if (line.size() < 2 || (line.front() != '+' && line.front() != '?')) continue;
        const auto space = line.find(' ');
        if (space == std::string_view::npos) continue;
        const std::string_view method = line.substr(1, space - 1), target = line.substr(space + 1);
        if (line.front() == '?') {
            lookups.emplace_back(method, target);
            continue;
        }
        const std::string id = std::to_string(line_no);
        aqd::route_target t;
        t.plugin = id;
        verdict got = verdict::ok;
        try {
            r.add(method, target, std::move(t));
        } catch (const route_error& e) {
            got = e.kind == route_error::duplicate ? verdict::duplicate : verdict::invalid;
        }
        const verdict want = expected.add(method, target, id);
        AQ_FUZZ_CHECK(got == want, "add " + std::string(method) + " " + std::string(target) + ": router " +
                                       std::to_string(static_cast<int>(got)) + ", model " +
                                       std::to_string(static_cast<int>(want)) + " (0 ok, 1 invalid, 2 duplicate)");
    }

    for (const auto& [method, path] : lookups) {
        compare(r, expected, method, path);
        compare(r, expected, method, "/v1" + path);
        compare(r, expected, method, path + "/");
    }
    // Each route through a path of its own, parameters filled with encoded bytes (the last bytes
    // of the input, so the fuzzer steers them too).
    std::string_view fill(reinterpret_cast<const char*>(data), size);
    fill = fill.substr(fill.size() - std::min<std::size_t>(fill.size(), 8));
    for (const model_route& m : expected.routes()) {
        std::string path;
        for (std::size_t i = 0; i < m.segments.size(); ++i)
            path += "/" + (param(m.segments[i]) ? percent_encoded(fill.empty() ? std::string_view("x") : fill.substr(i % fill.size())) : m.segments[i]);
        if (path.empty()) path = "/";
        compare(r, expected, m.method, path);
        compare(r, expected, m.method, "/v1" + path);
        compare(r, expected, m.method, path + "/");
        compare(r, expected, "PATCH", path);
    }
    return 0;
}
