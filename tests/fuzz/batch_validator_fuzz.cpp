// Fuzz target: plugins/files/batch_validator.cpp, the streaming check of batch input files.
//
// Input: the JSONL file itself.
//
// Invariants:
//   - fed whole or in random pieces, the same verdict (the same message naming the same line)
//     and the same number of requests: TCP decides the pieces, not the client;
//   - the verdict of a model of the rules in batch_validator.hpp, written independently: lines
//     split at '\n', each checked for UTF-8 by its own decoder, then parsed whole with
//     Boost.JSON's DOM parser and checked member by member, in the validator's order.
#include "invariant.hpp"
#include "piece_plan.hpp"

#include "batch_validator.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using aq::files::batch_validator;
namespace json = boost::json;

struct verdict {
    std::string error;  // "" when the file is valid
    std::uint64_t requests = 0;
    bool operator==(const verdict&) const = default;
};

verdict validate(const std::vector<std::string_view>& pieces) {
    batch_validator v;
    verdict out;
    try {
        for (std::string_view p : pieces) v.push(p);
        v.finish();
    } catch (const batch_validator::error& e) {
        out.error = e.what();
    }
    out.requests = v.requests();
    return out;
}

// RFC 3629 by decoding each sequence and checking the code point: no overlong form, no
// surrogate, nothing above U+10FFFF, nothing cut short.
bool utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char lead = static_cast<unsigned char>(s[i]);
        std::size_t len = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        std::uint32_t cp = len == 1 ? lead : lead & (0x7f >> len);
        for (std::size_t k = 1; k < len; ++k) {
            const unsigned char c = static_cast<unsigned char>(s[i + k]);
            if ((c >> 6) != 2) return false;
            cp = cp << 6 | (c & 0x3f);
        }
        const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

verdict model(std::string_view file) {
    verdict out;
    std::unordered_set<std::string> ids;
    std::uint64_t line_no = 0;
    json::parse_options opt;
    opt.max_depth = 10000;
    const auto fail = [&](const std::string& what) {
        out.error = what + " at line " + std::to_string(line_no);
        return out;
    };
    for (bool more = true; more;) {
        ++line_no;
        const auto nl = file.find('\n');
        std::string_view line = file.substr(0, nl);
        more = nl != std::string_view::npos;
        file = more ? file.substr(nl + 1) : std::string_view();

        if (!utf8(line)) return fail("Invalid UTF-8");
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        json::error_code ec;
        const json::value v = json::parse(json::string_view(line.data(), line.size()), ec, {}, opt);
        if (ec) return fail("Invalid JSON");
        if (!v.is_object()) return fail("Invalid request (not a JSON object)");
        const json::object& o = v.get_object();
        const json::value* id = o.if_contains("custom_id");
        if (!id) return fail("Missing custom_id");
        if (id->is_string() && id->get_string().size() > 64 * 1024) return fail("Invalid custom_id (longer than 65536 bytes)");
        if (!id->is_string() || id->get_string().empty()) return fail("Invalid custom_id (must be a non-empty string)");
        const json::value* method = o.if_contains("method");
        if (!method) return fail("Missing method");
        if (!method->is_string() || method->get_string() != "POST") return fail("Invalid method (must be POST)");
        const json::value* url = o.if_contains("url");
        if (!url) return fail("Missing url");
        if (!url->is_string() || !batch_validator::supported_url(url->get_string())) return fail("Unsupported url");
        const json::value* body = o.if_contains("body");
        if (!body) return fail("Missing body");
        if (!body->is_object()) return fail("Invalid body (must be a JSON object)");
        if (!ids.insert(std::string(id->get_string())).second) return fail("Duplicate custom_id");
        ++out.requests;
    }
    if (out.requests == 0) out.error = "The batch file contains no requests";
    return out;
}

std::string describe(const verdict& v) { return "\"" + v.error + "\", " + std::to_string(v.requests) + " requests"; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view file(reinterpret_cast<const char*>(data), size);
    aq::fuzz::piece_plan plan(file);
    const verdict whole = validate({file});
    const verdict split = validate(plan.cut(file));
    AQ_FUZZ_CHECK(whole == split, "whole: " + describe(whole) + "\n  split: " + describe(split));
    const verdict expected = model(file);
    AQ_FUZZ_CHECK(whole == expected, "validator: " + describe(whole) + "\n  model: " + describe(expected));
    return 0;
}
