// The batch-line rules as a table: input file -> the first problem (or acceptance), once as the
// upload sees it (files) and once as batch creation sees it (batches: endpoint
// /v1/chat/completions, models "m" and "gpt-4o-mini" served). Every path that validates batch
// input feeds these same cases (tests/batch_line/validator_test.cpp: the library, in both modes
// and at every split; tests/files/files_api_test.cpp: the upload over HTTP), so the paths cannot
// drift apart.
//
// The cases assume rule_case_limits (small, so the limit cases stay small); a path under test
// must be configured with them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aqt::batch_rules {

struct verdict {
    std::uint64_t line = 0;  // 0: the whole file (or accepted)
    std::string code;        // empty: the file is accepted
    std::string message;
    std::string param;

    bool accepted() const { return code.empty(); }
    friend bool operator==(const verdict&, const verdict&) = default;
};

struct rule_case {
    std::string name;
    std::string input;
    verdict upload;
    verdict batch;
    std::uint64_t requests = 0;  // for accepted files: the number of requests
};

struct rule_case_limits {
    static constexpr std::size_t max_line_bytes = 1024;
    static constexpr std::uint64_t max_requests = 5;
};
inline const char* const rule_case_endpoint = "/v1/chat/completions";
inline bool rule_case_model_known(std::string_view m) { return m == "m" || m == "gpt-4o-mini"; }

// A valid line (unless the parts say otherwise).
inline std::string request_line(const std::string& custom_id, const std::string& url = "/v1/chat/completions",
                                const std::string& model = "\"m\"") {
    return R"({"custom_id": ")" + custom_id + R"(", "method": "POST", "url": ")" + url +
           R"(", "body": {"model": )" + model + R"(, "messages": [{"role": "user", "content": "hi \"there\" é"}]}})";
}

inline const std::vector<rule_case>& rule_cases() {
    auto ok = [](std::uint64_t) { return verdict{}; };
    auto at = [](std::uint64_t line, std::string code, std::string message, std::string param = {}) {
        return verdict{line, std::move(code), std::move(message), std::move(param)};
    };
    auto json_error = [&](std::uint64_t line) { return at(line, "invalid_json_line", "Invalid JSON"); };
    auto utf8_error = [&](std::uint64_t line) { return at(line, "invalid_json_line", "Invalid UTF-8"); };
    auto invalid = [&](std::uint64_t line, std::string message, std::string param) {
        return at(line, "invalid_request", std::move(message), std::move(param));
    };
    const std::string L = request_line("a");
    const std::string head = R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions",)";
    static const std::vector<rule_case> cases = [&] {
        std::vector<rule_case> c = {
            // Accepted files.
            {"one_line", L + "\n", ok(0), ok(0), 1},
            {"no_final_newline", L, ok(0), ok(0), 1},
            {"blank_lines_crlf_and_padding",
             "  " + L + " \r\n\n   \n\t\r\n" + request_line("b") + "\n" + request_line("c"), ok(0), ok(0), 3},
            {"custom_id_of_512_bytes", request_line(std::string(512, 'x')), ok(0), ok(0), 1},
            {"model_of_256_bytes", request_line("a", "/v1/chat/completions", "\"" + std::string(256, 'm') + "\""),
             ok(0), at(1, "model_not_found", "The model '" + std::string(256, 'm') + "' is not available", "body.model"),
             1},
            {"five_requests_is_the_limit",
             request_line("a") + "\n" + request_line("b") + "\n\n" + request_line("c") + "\n" + request_line("d") +
                 "\n" + request_line("e") + "\n",
             ok(0), ok(0), 5},
            {"escaped_key_names_the_field",
             R"({"custom\u005fid":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})", ok(0),
             ok(0), 1},
            {"members_in_any_order_and_extra_members",
             R"({"body":{"x":{"model":1},"model":"m"},"extra":[1,{"url":2}],"url":"/v1/chat/completions","method":"POST","custom_id":"z"})",
             ok(0), ok(0), 1},
            // Endpoint and model: rules of batch creation only.
            {"every_supported_url",
             request_line("a", "/v1/embeddings") + "\n" + request_line("b", "/v1/completions") + "\n" +
                 request_line("c", "/v1/responses") + "\n" + request_line("d"),
             ok(0), at(1, "url_mismatch", "Invalid url (must be the batch's endpoint /v1/chat/completions)", "url"), 4},
            {"url_mismatch_on_line_2", L + "\n" + request_line("b", "/v1/embeddings") + "\n", ok(0),
             at(2, "url_mismatch", "Invalid url (must be the batch's endpoint /v1/chat/completions)", "url"), 2},
            {"model_not_served", L + "\n" + request_line("b", "/v1/chat/completions", "\"other\"") + "\n", ok(0),
             at(2, "model_not_found", "The model 'other' is not available", "body.model"), 2},
            // Framing, UTF-8, JSON.
            {"invalid_json", L + "\n{oops\n", json_error(2), json_error(2)},
            {"trailing_garbage", L + " x\n", json_error(1), json_error(1)},
            {"two_values_on_one_line", L + L + "\n", json_error(1), json_error(1)},
            {"truncated_last_line", "\n\n" + L.substr(0, 30), json_error(3), json_error(3)},
            {"comment", L + " // note\n", json_error(1), json_error(1)},
            {"byte_order_mark", "\xEF\xBB\xBF" + L, json_error(1), json_error(1)},
            {"invalid_utf8", L + "\n" + request_line("b\xff") + "\n", utf8_error(2), utf8_error(2)},
            {"overlong_utf8", request_line("a\xc0\xaf"), utf8_error(1), utf8_error(1)},
            {"surrogate_utf8", request_line("a\xed\xa0\x80"), utf8_error(1), utf8_error(1)},
            {"utf8_cut_by_newline", L + "\n\"\xe2\x82\n", utf8_error(2), utf8_error(2)},
            {"invalid_utf8_beats_invalid_json", "{oops \xff\n", utf8_error(1), utf8_error(1)},
            {"line_too_long", L + "\n" + request_line(std::string(1000, 'y')) + "\n",
             at(2, "line_too_long", "Line is too long (over 1024 bytes)"),
             at(2, "line_too_long", "Line is too long (over 1024 bytes)")},
            {"too_long_beats_invalid_utf8", std::string(1100, '\xff'),
             at(1, "line_too_long", "Line is too long (over 1024 bytes)"),
             at(1, "line_too_long", "Line is too long (over 1024 bytes)")},
            {"sixth_request", [] {
                 std::string f;
                 for (int i = 0; i < 6; ++i) f += request_line("r" + std::to_string(i)) + "\n\n";
                 return f;
             }(),
             at(11, "too_many_requests", "Too many requests (the limit is 5)"),
             at(11, "too_many_requests", "Too many requests (the limit is 5)")},
            {"too_many_beats_invalid_json", [&] {
                 std::string f;
                 for (int i = 0; i < 5; ++i) f += request_line("r" + std::to_string(i)) + "\n";
                 return f + "{oops\n";
             }(),
             at(6, "too_many_requests", "Too many requests (the limit is 5)"),
             at(6, "too_many_requests", "Too many requests (the limit is 5)")},
            {"blank_lines_only", "\n  \r\n\t\n", at(0, "empty_file", "The batch file contains no requests"),
             at(0, "empty_file", "The batch file contains no requests")},
            // The shape of a line.
            {"array", "[1,2]\n", at(1, "invalid_json_line", "Invalid request (not a JSON object)"),
             at(1, "invalid_json_line", "Invalid request (not a JSON object)")},
            {"string", "\"s\"\n", at(1, "invalid_json_line", "Invalid request (not a JSON object)"),
             at(1, "invalid_json_line", "Invalid request (not a JSON object)")},
            {"number", "42", at(1, "invalid_json_line", "Invalid request (not a JSON object)"),
             at(1, "invalid_json_line", "Invalid request (not a JSON object)")},
            {"custom_id_twice", R"({"custom_id":"a","custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})",
             invalid(1, "Invalid request (duplicate key 'custom_id')", "custom_id"),
             invalid(1, "Invalid request (duplicate key 'custom_id')", "custom_id")},
            {"escaped_duplicate_key", R"({"custom_id":"a","custom\u005fid":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})",
             invalid(1, "Invalid request (duplicate key 'custom_id')", "custom_id"),
             invalid(1, "Invalid request (duplicate key 'custom_id')", "custom_id")},
            {"body_twice", head + R"("body":{"model":"m"},"body":{"model":"m"}})",
             invalid(1, "Invalid request (duplicate key 'body')", "body"),
             invalid(1, "Invalid request (duplicate key 'body')", "body")},
            {"model_twice", head + R"("body":{"model":"m","model":"gpt-4o-mini"}})",
             invalid(1, "Invalid request (duplicate key 'body.model')", "body.model"),
             invalid(1, "Invalid request (duplicate key 'body.model')", "body.model")},
            {"missing_custom_id", R"({"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})",
             invalid(1, "Missing custom_id", "custom_id"), invalid(1, "Missing custom_id", "custom_id")},
            {"nested_fields_do_not_count", R"({"body":{"custom_id":"a","method":"POST","url":"/v1/embeddings"}})",
             invalid(1, "Missing custom_id", "custom_id"), invalid(1, "Missing custom_id", "custom_id")},
            {"empty_custom_id", request_line(""),
             invalid(1, "Invalid custom_id (must be a non-empty string)", "custom_id"),
             invalid(1, "Invalid custom_id (must be a non-empty string)", "custom_id")},
            {"numeric_custom_id", R"({"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})",
             invalid(1, "Invalid custom_id (must be a non-empty string)", "custom_id"),
             invalid(1, "Invalid custom_id (must be a non-empty string)", "custom_id")},
            {"custom_id_of_513_bytes", request_line(std::string(513, 'x')),
             invalid(1, "Invalid custom_id (longer than 512 bytes)", "custom_id"),
             invalid(1, "Invalid custom_id (longer than 512 bytes)", "custom_id")},
            {"custom_id_measured_after_unescaping", request_line([] {
                 std::string e;
                 for (int i = 0; i < 120; ++i) e += "\\u0041";  // 720 bytes written, 120 decoded
                 return e;
             }()),
             ok(0), ok(0), 1},
            {"missing_method", R"({"custom_id":"a","url":"/v1/chat/completions","body":{"model":"m"}})",
             invalid(1, "Missing method", "method"), invalid(1, "Missing method", "method")},
            {"get_method", R"({"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}})",
             invalid(1, "Invalid method (must be POST)", "method"),
             invalid(1, "Invalid method (must be POST)", "method")},
            {"missing_url", R"({"custom_id":"a","method":"POST","body":{"model":"m"}})",
             invalid(1, "Missing url", "url"), invalid(1, "Missing url", "url")},
            {"unsupported_url", request_line("a", "/v1/images/generations"), invalid(1, "Unsupported url", "url"),
             invalid(1, "Unsupported url", "url")},
            {"numeric_url", R"({"custom_id":"a","method":"POST","url":1,"body":{"model":"m"}})",
             invalid(1, "Unsupported url", "url"), invalid(1, "Unsupported url", "url")},
            {"missing_body", R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions"})",
             invalid(1, "Missing body", "body"), invalid(1, "Missing body", "body")},
            {"string_body", head + R"("body":"x"})", invalid(1, "Invalid body (must be a JSON object)", "body"),
             invalid(1, "Invalid body (must be a JSON object)", "body")},
            {"array_body", head + R"("body":[{"model":"m"}]})",
             invalid(1, "Invalid body (must be a JSON object)", "body"),
             invalid(1, "Invalid body (must be a JSON object)", "body")},
            {"missing_model", head + R"("body":{"messages":[],"x":{"model":"m"}}})",
             invalid(1, "Missing body.model", "body.model"), invalid(1, "Missing body.model", "body.model")},
            {"numeric_model", request_line("a", "/v1/chat/completions", "3"),
             invalid(1, "Invalid body.model (must be a non-empty string)", "body.model"),
             invalid(1, "Invalid body.model (must be a non-empty string)", "body.model")},
            {"empty_model", request_line("a", "/v1/chat/completions", "\"\""),
             invalid(1, "Invalid body.model (must be a non-empty string)", "body.model"),
             invalid(1, "Invalid body.model (must be a non-empty string)", "body.model")},
            {"model_of_257_bytes", request_line("a", "/v1/chat/completions", "\"" + std::string(257, 'm') + "\""),
             invalid(1, "Invalid body.model (longer than 256 bytes)", "body.model"),
             invalid(1, "Invalid body.model (longer than 256 bytes)", "body.model")},
            // Across lines.
            {"duplicate_custom_id", request_line("x") + "\n" + request_line("y") + "\n\n\n\n\n" + request_line("x") + "\n",
             at(7, "duplicate_custom_id", "Duplicate custom_id", "custom_id"),
             at(7, "duplicate_custom_id", "Duplicate custom_id", "custom_id")},
            {"duplicate_after_unescaping", request_line("\\u00e9") + "\n" + request_line("\xc3\xa9") + "\n",
             at(2, "duplicate_custom_id", "Duplicate custom_id", "custom_id"),
             at(2, "duplicate_custom_id", "Duplicate custom_id", "custom_id")},
            {"first_problem_wins", request_line("x") + "\n" + request_line("x") + "\n{oops\n",
             at(2, "duplicate_custom_id", "Duplicate custom_id", "custom_id"),
             at(2, "duplicate_custom_id", "Duplicate custom_id", "custom_id")},
        };
        return c;
    }();
    return cases;
}

}  // namespace aqt::batch_rules
