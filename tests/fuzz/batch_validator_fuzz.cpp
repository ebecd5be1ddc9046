// Fuzz target: the batch-line library's streaming validator (plugins/batch_line/validator.hpp),
// which the files plugin runs on uploads and the batches plugin at batch creation.
//
// Input: the JSONL file itself. Limits, max_problems, keep_text and the creation context (an
// endpoint, a model list) are chosen per input, small enough for the fuzzer to reach them.
//
// Invariants:
//   - fed whole or in random pieces, the same problems (line, code, message, param), the same
//     accepted lines (number, custom_id, url, model, and with keep_text the text and body) and
//     the same counts: "Verdicts depend on the bytes only, never on how they were split";
//   - accepted lines come in order, their text is exactly the file's line, and a file without
//     problems accepted every non-blank line;
//   - no more problems than max_problems, each naming a line of the file (or 0, the file);
//   - the UTF-8 check's simd method, fed in pieces, agrees with its bytewise one.
#include "invariant.hpp"
#include "piece_plan.hpp"

#include "batch_line/utf8.hpp"
#include "batch_line/validator.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

namespace bl = aq::batch_line;
using namespace aq::fuzz;

struct accepted {
    std::uint64_t number = 0;
    std::string custom_id, url, model, text, body;
    bool operator==(const accepted&) const = default;
};

struct outcome {
    std::vector<bl::problem> problems;
    std::vector<accepted> lines;
    std::uint64_t requests = 0;
    bool stopped = false;
    bool operator==(const outcome&) const = default;
};

struct setup {
    bl::limits limit;
    std::size_t max_problems = 1;
    bool keep_text = false;
    bool creation = false;  // batch creation: an endpoint and known models
};

outcome validate(const setup& s, const std::vector<std::string_view>& pieces) {
    outcome out;
    bl::options o;
    o.limit = s.limit;
    o.max_problems = s.max_problems;
    o.keep_text = s.keep_text;
    if (s.creation) {
        o.rules.endpoint = "/v1/chat/completions";
        o.rules.model_known = [](std::string_view model) { return model != "unknown"; };
    }
    o.on_line = [&](const bl::line& l) {
        out.lines.push_back({l.number, std::string(l.custom_id), std::string(l.url), std::string(l.model),
                             std::string(l.text), std::string(l.body)});
    };
    bl::validator v(std::move(o));
    for (std::string_view p : pieces) v.push(p);
    v.finish();
    out.problems = v.problems();
    out.requests = v.requests();
    out.stopped = v.stopped();
    return out;
}

std::string describe(const outcome& o) {
    std::string s = std::to_string(o.requests) + " requests, " + std::to_string(o.lines.size()) + " accepted" +
                    (o.stopped ? ", stopped" : "");
    for (const auto& p : o.problems)
        s += " [line " + std::to_string(p.line) + " " + p.code + " \"" + p.message + "\" " + p.param + "]";
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view file(reinterpret_cast<const char*>(data), size);
    piece_plan plan(file);
    setup s;
    const std::size_t line_bytes[] = {16u << 20, 64};
    const std::size_t id_bytes[] = {512, 4};
    const std::uint64_t requests[] = {50000, 3};
    const std::size_t problems[] = {1, 3};
    s.limit.max_line_bytes = plan.pick(line_bytes);
    s.limit.max_custom_id_bytes = plan.pick(id_bytes);
    s.limit.max_requests = plan.pick(requests);
    s.max_problems = plan.pick(problems);
    s.keep_text = plan.below(2) == 1;
    s.creation = plan.below(2) == 1;

    // The UTF-8 check's two methods agree on the whole input, fed in the plan's pieces.
    if (bl::utf8_validator::available(bl::utf8_validator::method::simd)) {
        bl::utf8_validator simd(bl::utf8_validator::method::simd), bytewise(bl::utf8_validator::method::bytewise);
        for (std::string_view piece : plan.cut(file)) simd.feed(piece);
        bytewise.feed(file);
        AQ_FUZZ_CHECK(simd.complete() == bytewise.complete(), "UTF-8 verdicts differ");
    }

    const outcome whole = validate(s, {file});
    const outcome split = validate(s, plan.cut(file));
    AQ_FUZZ_CHECK(whole == split, "whole: " + describe(whole) + "\n  split: " + describe(split));

    // The file's lines, as the validator numbers them.
    std::vector<std::string_view> lines;
    for (std::string_view rest = file;;) {
        const auto nl = rest.find('\n');
        lines.push_back(rest.substr(0, nl));
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    AQ_FUZZ_CHECK(whole.problems.size() <= s.max_problems, describe(whole));
    for (const auto& p : whole.problems) AQ_FUZZ_CHECK(p.line <= lines.size(), describe(whole));
    std::uint64_t previous = 0;
    for (const auto& l : whole.lines) {
        AQ_FUZZ_CHECK(l.number > previous && l.number <= lines.size(), describe(whole));
        previous = l.number;
        if (s.keep_text) AQ_FUZZ_CHECK(l.text == lines[l.number - 1], "line " + std::to_string(l.number) + " text");
    }
    if (whole.problems.empty()) {
        std::uint64_t non_blank = 0;
        for (std::string_view l : lines) non_blank += l.find_first_not_of(" \t\r") != std::string_view::npos;
        AQ_FUZZ_CHECK(whole.lines.size() == non_blank && whole.requests == non_blank, describe(whole));
    }
    return 0;
}
