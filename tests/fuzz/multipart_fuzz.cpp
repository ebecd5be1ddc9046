// Fuzz target: plugins/files/multipart.cpp, the streaming multipart/form-data parser.
//
// Input: a Content-Type header value, a newline, then the body. The boundary comes from
// multipart::boundary_of(), so that is fuzzed as well.
//
// Invariants, beyond "no crash, no sanitizer finding":
//   - fed whole or in random pieces, the parser reports the same parts (headers, data, ends) and
//     the same error, if any: TCP decides the pieces, not the client;
//   - data arrives only inside a part, every part that began ends before the next one, and a
//     successful parse has ended every part and is done();
//   - a part's data never contains the delimiter that should have ended it.
#include "invariant.hpp"
#include "piece_plan.hpp"

#include "multipart.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using aq::files::multipart;
using namespace aq::fuzz;

struct recorded_part {
    std::string name;
    std::optional<std::string> filename;
    std::string content_type;
    std::string data;
    bool ended = false;
    bool operator==(const recorded_part&) const = default;
};

struct outcome {
    std::vector<recorded_part> parts;
    std::optional<std::string> error;
    bool done = false;
    bool operator==(const outcome&) const = default;
};

std::string describe(const outcome& o) {
    std::string s = o.error ? "error \"" + *o.error + "\"" : std::string(o.done ? "done" : "not done");
    for (const auto& p : o.parts)
        s += " [" + p.name + (p.filename ? " file=" + *p.filename : "") + " " + std::to_string(p.data.size()) + " bytes" +
             (p.ended ? "" : " open") + "]";
    return s;
}

outcome parse(const std::string& boundary, const std::vector<std::string_view>& pieces, std::size_t max_header) {
    outcome o;
    multipart::callbacks cb{
        [&](const multipart::part& p) {
            AQ_FUZZ_CHECK(o.parts.empty() || o.parts.back().ended, "a part began before the previous one ended");
            o.parts.push_back({p.name, p.filename, p.content_type, {}, false});
        },
        [&](std::string_view d) {
            AQ_FUZZ_CHECK(!o.parts.empty() && !o.parts.back().ended, "data outside a part");
            AQ_FUZZ_CHECK(!d.empty(), "empty data callback");
            o.parts.back().data.append(d);
        },
        [&]() {
            AQ_FUZZ_CHECK(!o.parts.empty() && !o.parts.back().ended, "a part ended twice");
            o.parts.back().ended = true;
        },
    };
    multipart m(boundary, std::move(cb), max_header);
    try {
        for (std::string_view piece : pieces) m.push(piece);
        m.finish();
    } catch (const multipart::error& e) {
        o.error = e.what();
    }
    o.done = m.done();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto newline = input.find('\n');
    if (newline == std::string_view::npos) {
        (void)multipart::boundary_of(input);
        return 0;
    }
    const std::optional<std::string> boundary = multipart::boundary_of(input.substr(0, newline));
    if (!boundary) return 0;
    AQ_FUZZ_CHECK(!boundary->empty() && boundary->find_first_of("\r\n") == std::string::npos, *boundary);
    const std::string_view body = input.substr(newline + 1);

    piece_plan plan(input);
    const std::size_t header_limits[] = {16 * 1024, 256, 32};
    const std::size_t max_header = plan.pick(header_limits);

    const outcome whole = parse(*boundary, {body}, max_header);
    const outcome split = parse(*boundary, plan.cut(body), max_header);
    AQ_FUZZ_CHECK(whole == split, "max_header " + std::to_string(max_header) + "\n  whole: " + describe(whole) +
                                      "\n  split: " + describe(split));

    if (!whole.error) {
        AQ_FUZZ_CHECK(whole.done, describe(whole));
        for (const auto& p : whole.parts) AQ_FUZZ_CHECK(p.ended, describe(whole));
    }
    const std::string delimiter = "\r\n--" + *boundary;
    for (const auto& p : whole.parts)
        AQ_FUZZ_CHECK(p.data.find(delimiter) == std::string::npos, "a delimiter inside part " + p.name);
    return 0;
}
