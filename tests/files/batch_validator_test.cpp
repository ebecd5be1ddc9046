// The streaming JSONL validator for purpose "batch": exact messages naming the line, and the
// same verdict whatever the chunking.
#define BOOST_TEST_MODULE files_batch_validator
#include <boost/test/unit_test.hpp>

#include "batch_validator.hpp"

#include <string>

using aq::files::batch_validator;

namespace {

std::string line(const std::string& id, const std::string& url = "/v1/chat/completions") {
    return R"({"custom_id": ")" + id + R"(", "method": "POST", "url": ")" + url +
           R"(", "body": {"model": "m", "messages": [{"role": "user", "content": "hi \"there\" é"}], "n": 1}})";
}

// The error message for `content` fed in one piece, or "" when valid.
std::string verdict(const std::string& content) {
    try {
        batch_validator v;
        v.push(content);
        v.finish();
        return "";
    } catch (const batch_validator::error& e) {
        return e.what();
    }
}

std::string verdict_split(const std::string& content, std::size_t at) {
    try {
        batch_validator v;
        v.push(std::string_view(content).substr(0, at));
        v.push(std::string_view(content).substr(at));
        v.finish();
        return "";
    } catch (const batch_validator::error& e) {
        return e.what();
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(accepts_valid_file_with_blank_lines_and_crlf) {
    std::string f = line("a") + "\r\n\n   \n" + line("b", "/v1/embeddings") + "\n" + line("c", "/v1/responses") + "\n" +
                    line("d", "/v1/completions");
    batch_validator v;
    v.push(f);
    v.finish();
    BOOST_TEST(v.requests() == 4u);
}

BOOST_AUTO_TEST_CASE(same_verdict_at_every_split_point) {
    std::string good = line("a") + "\n" + line("b") + "\n";
    std::string bad = line("a") + "\n" + line("b") + "\n" + line("a") + "\n";
    std::string bad_utf8 = line("a") + "\n" + line("b\xc3") + "\n";
    for (std::size_t i = 0; i <= good.size(); ++i) BOOST_REQUIRE_EQUAL(verdict_split(good, i), "");
    for (std::size_t i = 0; i <= bad.size(); ++i) BOOST_REQUIRE_EQUAL(verdict_split(bad, i), "Duplicate custom_id at line 3");
    for (std::size_t i = 0; i <= bad_utf8.size(); ++i)
        BOOST_REQUIRE_EQUAL(verdict_split(bad_utf8, i), "Invalid UTF-8 at line 2");
}

BOOST_AUTO_TEST_CASE(byte_by_byte) {
    std::string f = line("a") + "\n" + line("b") + "\n" + "{oops\n";
    batch_validator v;
    std::string msg;
    try {
        for (char c : f) v.push(std::string_view(&c, 1));
        v.finish();
    } catch (const batch_validator::error& e) {
        msg = e.what();
    }
    BOOST_TEST(msg == "Invalid JSON at line 3");
}

BOOST_AUTO_TEST_CASE(invalid_json_names_the_line) {
    BOOST_TEST(verdict(line("a") + "\n" + line("b") + "\n{\"custom_id\": \n") == "Invalid JSON at line 3");
    BOOST_TEST(verdict(line("a") + " trailing\n") == "Invalid JSON at line 1");
    BOOST_TEST(verdict(line("a") + line("b") + "\n") == "Invalid JSON at line 1");
    BOOST_TEST(verdict("\n\n" + line("a").substr(0, 30)) == "Invalid JSON at line 3");
}

BOOST_AUTO_TEST_CASE(duplicate_custom_id) {
    BOOST_TEST(verdict(line("x") + "\n" + line("y") + "\n\n\n\n\n" + line("x") + "\n") == "Duplicate custom_id at line 7");
}

BOOST_AUTO_TEST_CASE(field_rules) {
    BOOST_TEST(verdict("[1,2]\n") == "Invalid request (not a JSON object) at line 1");
    BOOST_TEST(verdict("\"s\"\n") == "Invalid request (not a JSON object) at line 1");
    BOOST_TEST(verdict(R"({"method":"POST","url":"/v1/embeddings","body":{}})") == "Missing custom_id at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"","method":"POST","url":"/v1/embeddings","body":{}})") ==
               "Invalid custom_id (must be a non-empty string) at line 1");
    BOOST_TEST(verdict(R"({"custom_id":7,"method":"POST","url":"/v1/embeddings","body":{}})") ==
               "Invalid custom_id (must be a non-empty string) at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","method":"GET","url":"/v1/embeddings","body":{}})") ==
               "Invalid method (must be POST) at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","url":"/v1/embeddings","body":{}})") == "Missing method at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","method":"POST","url":"/v1/images","body":{}})") == "Unsupported url at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","method":"POST","body":{}})") == "Missing url at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","method":"POST","url":"/v1/embeddings"})") == "Missing body at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","method":"POST","url":"/v1/embeddings","body":"x"})") ==
               "Invalid body (must be a JSON object) at line 1");
    BOOST_TEST(verdict(R"({"custom_id":"a","method":"POST","url":"/v1/embeddings","body":[]})") ==
               "Invalid body (must be a JSON object) at line 1");
    // Nested members named like the checked ones do not count.
    BOOST_TEST(verdict(R"({"body":{"custom_id":"a","method":"POST","url":"/v1/embeddings"}})") ==
               "Missing custom_id at line 1");
}

BOOST_AUTO_TEST_CASE(unicode_escapes_in_custom_id) {
    BOOST_TEST(verdict(line("\\u00e9") + "\n" + line("\xc3\xa9") + "\n") == "Duplicate custom_id at line 2");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_forms) {
    BOOST_TEST(verdict(line("a\xff")) == "Invalid UTF-8 at line 1");
    BOOST_TEST(verdict(line("a\xc0\xaf")) == "Invalid UTF-8 at line 1");           // overlong
    BOOST_TEST(verdict(line("a\xed\xa0\x80")) == "Invalid UTF-8 at line 1");       // surrogate
    BOOST_TEST(verdict(line("a") + "\n\"\xe2\x82\n") == "Invalid UTF-8 at line 2");  // cut by newline
}

BOOST_AUTO_TEST_CASE(no_requests) {
    BOOST_TEST(verdict("") == "The batch file contains no requests");
    BOOST_TEST(verdict("\n  \r\n") == "The batch file contains no requests");
}

BOOST_AUTO_TEST_CASE(large_body_is_streamed) {
    std::string head = R"({"custom_id":"big","method":"POST","url":"/v1/embeddings","body":{"input":")";
    batch_validator v;
    v.push(head);
    std::string block(1 << 20, 'a');
    for (int i = 0; i < 64; ++i) v.push(block);
    v.push("\"}}\n");
    v.finish();
    BOOST_TEST(v.requests() == 1u);
}

// Found by tests/fuzz (fuzz_batch_validator): a line with a JSON error and, later in the same
// line, invalid UTF-8 was "Invalid UTF-8" when the line came in one piece and "Invalid JSON" when
// a piece ended between the two. The whole line decides: invalid UTF-8 anywhere in it wins.
BOOST_AUTO_TEST_CASE(utf8_error_after_a_json_error_in_the_line_wins_at_every_split_point) {
    const std::string bad = line("a") + "\n{\"custom_id\" 7, \"x\": \"\xff\"}\n" + line("b") + "\n";
    for (std::size_t i = 0; i <= bad.size(); ++i) BOOST_REQUIRE_EQUAL(verdict_split(bad, i), "Invalid UTF-8 at line 2");
    const std::string json_only = line("a") + "\n{\"custom_id\" 7}\n" + line("b") + "\n";
    for (std::size_t i = 0; i <= json_only.size(); ++i)
        BOOST_REQUIRE_EQUAL(verdict_split(json_only, i), "Invalid JSON at line 2");
}
