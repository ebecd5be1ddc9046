// The batch-line library (plugins/batch_line): the shared rule table through the validator as the
// upload uses it and as batch creation uses it, at every split of the input; the exact and
// bounded custom_id set; SipHash's published vectors; what on_line hands out.
#define BOOST_TEST_MODULE batch_line
#include <boost/test/unit_test.hpp>

#include "rule_cases.hpp"

#include "batch_line/custom_id_set.hpp"
#include "batch_line/siphash.hpp"
#include "batch_line/validator.hpp"

#include <string>
#include <vector>

namespace bl = aq::batch_line;
using aqt::batch_rules::verdict;

namespace {

enum class path { upload_streaming, upload_buffered, batch };

bl::options options_for(path p) {
    bl::options o;
    o.limit.max_line_bytes = aqt::batch_rules::rule_case_limits::max_line_bytes;
    o.limit.max_requests = aqt::batch_rules::rule_case_limits::max_requests;
    if (p == path::batch) {
        o.rules.endpoint = aqt::batch_rules::rule_case_endpoint;
        o.rules.model_known = aqt::batch_rules::rule_case_model_known;
        o.max_problems = 100;
    }
    o.keep_text = p != path::upload_streaming;
    return o;
}

struct outcome {
    verdict first;
    std::uint64_t requests = 0;
};

// The first problem for `input` pushed in the given pieces.
outcome run(path p, const std::vector<std::string_view>& pieces) {
    bl::validator v(options_for(p));
    for (auto piece : pieces) v.push(piece);
    v.finish();
    outcome o;
    o.requests = v.requests();
    if (v.failed()) {
        const auto& pr = v.problems().front();
        o.first = verdict{pr.line, pr.code, pr.message, pr.param};
    }
    return o;
}

std::string show(const verdict& v) {
    return v.accepted() ? "accepted" : std::to_string(v.line) + " " + v.code + " '" + v.message + "' " + v.param;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rule_table_through_every_path_and_every_split) {
    for (const auto& c : aqt::batch_rules::rule_cases()) {
        for (path p : {path::upload_streaming, path::upload_buffered, path::batch}) {
            const verdict& want = p == path::batch ? c.batch : c.upload;
            BOOST_TEST_CONTEXT(c.name << " on path " << static_cast<int>(p)) {
                outcome whole = run(p, {c.input});
                BOOST_TEST(show(whole.first) == show(want));
                if (want.accepted()) BOOST_TEST(whole.requests == c.requests);
                // The same verdict at every split point, and byte by byte.
                const std::string_view in = c.input;
                for (std::size_t at = 1; at < in.size(); at += in.size() > 400 ? 7 : 1) {
                    outcome split = run(p, {in.substr(0, at), in.substr(at)});
                    BOOST_TEST_REQUIRE(show(split.first) == show(want), "split at " << at);
                }
                std::vector<std::string_view> bytes;
                for (std::size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
                BOOST_TEST(show(run(p, bytes).first) == show(want));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(describe_words_the_upload_error) {
    BOOST_TEST(bl::describe({3, "invalid_json_line", "Invalid JSON", ""}) == "Invalid JSON at line 3");
    BOOST_TEST(bl::describe({0, "empty_file", "The batch file contains no requests", ""}) ==
               "The batch file contains no requests");
}

BOOST_AUTO_TEST_CASE(on_line_hands_out_the_fields_text_and_raw_body) {
    std::vector<std::string> seen;
    bl::options o;
    o.keep_text = true;
    o.rules.endpoint = "/v1/embeddings";
    o.on_line = [&](const bl::line& l) {
        seen.push_back(std::to_string(l.number) + "|" + std::string(l.custom_id) + "|" + std::string(l.url) + "|" +
                       std::string(l.model) + "|" + std::string(l.body) + "|" + std::to_string(l.text.size()));
    };
    bl::validator v(o);
    const std::string l1 = R"({"custom_id": "c\u0031", "body" : { "model":"e5", "input": ["a}\"]", {"k": [1, 2.5e3]}] } , "method":"POST","url":"/v1/embeddings"})";
    const std::string l2 = R"(  {"url":"/v1/embeddings","method":"POST","custom_id":"c2","body":{"model":"e5"}}  )";
    v.push(l1 + "\n\n" + l2 + "\r\n");
    v.finish();
    BOOST_TEST(!v.failed());
    BOOST_TEST_REQUIRE(seen.size() == 2u);
    BOOST_TEST(seen[0] == "1|c1|/v1/embeddings|e5|{ \"model\":\"e5\", \"input\": [\"a}\\\"]\", {\"k\": [1, 2.5e3]}] }|" +
                              std::to_string(l1.size()));
    BOOST_TEST(seen[1] == "3|c2|/v1/embeddings|e5|{\"model\":\"e5\"}|" + std::to_string(l2.size() + 1));
}

BOOST_AUTO_TEST_CASE(batch_path_collects_several_problems_and_stops_calling_on_line) {
    int accepted = 0;
    bl::options o;
    o.keep_text = true;
    o.max_problems = 3;
    o.on_line = [&](const bl::line&) { ++accepted; };
    bl::validator v(o);
    using aqt::batch_rules::request_line;
    v.push(request_line("a") + "\n{x\n" + request_line("b") + "\n" + request_line("a") + "\n[]\n" +
           request_line("c") + "\n{y\n");
    v.finish();
    BOOST_TEST(v.stopped());
    BOOST_TEST_REQUIRE(v.problems().size() == 3u);
    BOOST_TEST(v.problems()[0].line == 2u);
    BOOST_TEST(v.problems()[1].line == 4u);
    BOOST_TEST(v.problems()[1].code == "duplicate_custom_id");
    BOOST_TEST(v.problems()[2].line == 5u);
    BOOST_TEST(accepted == 1);  // only line 1 came before the first problem
}

BOOST_AUTO_TEST_CASE(a_64_mib_line_streams_through_when_the_limit_allows_it) {
    bl::options o;
    o.limit.max_line_bytes = 65u << 20;
    bl::validator v(o);
    v.push(R"({"custom_id":"big","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":")");
    std::string block(1 << 20, 'a');
    for (int i = 0; i < 64; ++i) v.push(block);
    v.push("\"}}\n");
    v.finish();
    BOOST_TEST(!v.failed());
    BOOST_TEST(v.requests() == 1u);
}

BOOST_AUTO_TEST_CASE(siphash_matches_the_reference_vectors) {
    // Key 00 01 .. 0f; messages 00 01 .. (n-1): vectors from the SipHash paper's reference code.
    bl::siphash_key key{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    std::string msg;
    for (int i = 0; i < 15; ++i) msg.push_back(static_cast<char>(i));
    BOOST_TEST(bl::siphash24(key, "") == 0x726fdb47dd0e0e31ull);
    BOOST_TEST(bl::siphash24(key, msg) == 0xa129ca6149be45e5ull);
    BOOST_TEST(bl::siphash24(key, msg.substr(0, 8)) == 0x93f5f5799a932462ull);
}

BOOST_AUTO_TEST_CASE(custom_id_set_is_exact_under_forced_collisions_and_after_spilling) {
    // 16-bit hashes: thousands of collisions between different ids, and a log past its 1 MiB
    // memory part. Exactness means every distinct id is accepted and every repeat refused.
    bl::custom_id_set ids({}, 16);
    const std::string pad(40, 'p');
    for (int i = 0; i < 30000; ++i) BOOST_TEST_REQUIRE(ids.insert(pad + std::to_string(i)), i);
    for (int i = 0; i < 30000; i += 997) BOOST_TEST_REQUIRE(!ids.insert(pad + std::to_string(i)), i);
    BOOST_TEST(ids.size() == 30000u);
    BOOST_TEST(ids.insert(pad + "30000"));
    BOOST_TEST(!ids.insert(pad + "30000"));  // a repeat found in the log's memory part
}

BOOST_AUTO_TEST_CASE(custom_id_set_memory_is_about_16_bytes_per_id) {
    bl::custom_id_set ids;
    for (int i = 0; i < 2000000; ++i) ids.insert("request-" + std::to_string(i));
    BOOST_TEST(!ids.insert("request-1999999"));
    BOOST_TEST(ids.size() == 2000000u);
    BOOST_TEST(ids.table_bytes() <= 32u << 20, ids.table_bytes());
}
