// The one validator of batch input files (JSONL), used by the files plugin while an upload
// streams in and by the batches plugin when a batch is created: the same bytes get the same
// verdict at both (tests/batch_line/rule_cases.hpp is the shared table).
//
//   aq::batch_line::validator v({.limit = {...}, .scratch_dir = dir});
//   while (reading) { v.push(chunk); if (v.failed()) return describe(v.problems()[0]); }
//   v.finish();
//
// Lines end at '\n' (found with memchr); a line of spaces, tabs and '\r' only is blank and
// skipped, but counted for line numbers. A line's problem is the first of these that applies:
//
//   1. longer than limits.max_line_bytes     line_too_long       "Line is too long (over N bytes)"
//                                            (found as soon as the limit is passed)
//   2. the (max_requests + 1)-th request     too_many_requests   "Too many requests (the limit is N)"
//                                            (validation stops: later lines are not read)
//   3. not UTF-8 (anywhere in the line)      invalid_json_line   "Invalid UTF-8"
//   4. not one JSON value                    invalid_json_line   "Invalid JSON"
//   5. the line rules of line_rules.hpp, in their order (object, fields, endpoint, model)
//   6. a custom_id of an earlier line        duplicate_custom_id "Duplicate custom_id"
//      (equal after JSON unescaping; exact, in bounded memory: custom_id_set.hpp)
//
// and a file without any request gets empty_file "The batch file contains no requests" (line 0).
// Verdicts depend on the bytes only, never on how they were split into pushes, nor on keep_text.
//
// Memory: the parser's state, the custom_id set (~14 bytes per request) and, with keep_text,
// one line (at most max_line_bytes). Speed: memchr framing, an ASCII fast path for UTF-8, a SAX
// parser whose handler builds nothing, and the escapes of strings no rule reads masked before it
// parses them (escape_mask.hpp).
//
// Uses. Upload (files): default options; stop at the first problem; describe() words it for the
// 400 ("Invalid JSON at line 3"). Batch creation (batches): context.endpoint and
// context.model_known add the url_mismatch and model_not_found rules, keep_text makes on_line
// receive each accepted line's text and body (to store them), and max_problems > 1 collects
// several problems for the batch's errors.data.
#pragma once

#include "batch_line/custom_id_set.hpp"
#include "batch_line/line_rules.hpp"
#include "batch_line/utf8.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace aq::batch_line {

// An accepted line, as on_line sees it. Views are valid during the callback only.
struct line {
    std::uint64_t number = 0;  // 1-based line number in the file
    std::string_view custom_id;
    std::string_view url;
    std::string_view model;     // body.model
    std::string_view text;      // the whole line without '\n' (keep_text only)
    std::string_view body;      // the raw JSON text of "body" (keep_text only)
};

struct options {
    limits limit;
    context rules;
    // Called for each accepted line, in order, as long as no problem has been found. An
    // exception it throws propagates out of push(); the validator is then unusable.
    std::function<void(const line&)> on_line;
    bool keep_text = false;
    // Problems to collect before the validator stops reading (at least 1).
    std::size_t max_problems = 1;
    // Where the custom_id log may spill (custom_id_set); empty: the temporary directory.
    std::filesystem::path scratch_dir;
};

class validator {
public:
    explicit validator(options opts);
    ~validator();
    validator(const validator&) = delete;
    validator& operator=(const validator&) = delete;

    // Feeds the file's next bytes, split anywhere. Does nothing once stopped().
    void push(std::string_view bytes);
    // The file ended: judges the last line (one without '\n') and the file as a whole.
    void finish();

    bool failed() const noexcept { return !problems_.empty(); }
    // No more input is read: max_problems were found, or too many requests.
    bool stopped() const noexcept { return stopped_; }
    const std::vector<problem>& problems() const noexcept { return problems_; }
    // Non-blank lines so far.
    std::uint64_t requests() const noexcept { return requests_; }

private:
    void feed(std::string_view piece);
    void end_line();
    void judge_line();
    void report(std::uint64_t line, std::string code, std::string message, std::string param = {});

    options opts_;
    line_parser parser_;
    custom_id_set ids_;
    std::vector<problem> problems_;
    bool stopped_ = false;

    // The current line.
    std::uint64_t line_ = 1;
    std::uint64_t line_bytes_ = 0;
    bool started_ = false;    // a non-blank byte was seen
    bool skipping_ = false;   // too long: ignored up to its end
    utf8_validator utf8_;
    std::string text_;        // keep_text only
    std::uint64_t requests_ = 0;
};

// The problem as the upload's 400 words it: "Invalid JSON at line 3", or the bare message for a
// problem of the whole file.
std::string describe(const problem& p);

}  // namespace aq::batch_line
