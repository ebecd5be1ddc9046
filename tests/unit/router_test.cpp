#define BOOST_TEST_MODULE router
#include <boost/test/unit_test.hpp>

#include "router.hpp"

#include <string>

using aqd::route_error;
using aqd::route_target;
using aqd::router;
using outcome = aqd::router::outcome;

namespace {

route_target named(std::string plugin) {
    route_target t;
    t.plugin = std::move(plugin);
    return t;
}

// Which route answered: the tests tag each target with a distinct "plugin" name.
std::string who(const router::match& m) { return m.target ? m.target->plugin : std::string("<none>"); }

route_error::kind_t add_error(router& r, std::string_view method, std::string_view pattern) {
    try {
        r.add(method, pattern, named("x"));
    } catch (const route_error& e) {
        return e.kind;
    }
    BOOST_FAIL("expected route_error for " << method << " " << pattern);
    return route_error::invalid_pattern;
}

}  // namespace

BOOST_AUTO_TEST_CASE(literal_route_matches_with_and_without_v1_prefix) {
    router r;
    r.add("GET", "/files", named("list"));
    BOOST_TEST(who(r.find("GET", "/files")) == "list");
    BOOST_TEST(who(r.find("GET", "/v1/files")) == "list");
    BOOST_TEST((r.find("GET", "/v2/files").result == outcome::not_found));
    BOOST_TEST((r.find("GET", "/filesx").result == outcome::not_found));
}

BOOST_AUTO_TEST_CASE(bare_v1_matches_root_route) {
    router r;
    r.add("GET", "/", named("root"));
    BOOST_TEST(who(r.find("GET", "/")) == "root");
    BOOST_TEST(who(r.find("GET", "/v1")) == "root");
    BOOST_TEST(who(r.find("GET", "/v1/")) == "root");
}

BOOST_AUTO_TEST_CASE(only_one_v1_prefix_is_stripped) {
    router r;
    r.add("GET", "/files", named("list"));
    BOOST_TEST((r.find("GET", "/v1/v1/files").result == outcome::not_found));
}

BOOST_AUTO_TEST_CASE(trailing_slash_is_tolerated) {
    router r;
    r.add("GET", "/files", named("list"));
    r.add("GET", "/files/{file_id}", named("one"));
    BOOST_TEST(who(r.find("GET", "/files/")) == "list");
    BOOST_TEST(who(r.find("GET", "/v1/files/")) == "list");
    const auto m = r.find("GET", "/files/abc/");
    BOOST_TEST(who(m) == "one");
    BOOST_REQUIRE_EQUAL(m.params.size(), 1u);
    BOOST_TEST(m.params[0].second == "abc");
}

BOOST_AUTO_TEST_CASE(params_are_named_and_percent_decoded_without_plus_to_space) {
    router r;
    r.add("GET", "/files/{file_id}/parts/{part}", named("part"));
    const auto m = r.find("GET", "/v1/files/a%20b%2Fc+d/parts/7");
    BOOST_REQUIRE((m.result == outcome::found));
    BOOST_REQUIRE_EQUAL(m.params.size(), 2u);
    BOOST_TEST(m.params[0].first == "file_id");
    BOOST_TEST(m.params[0].second == "a b/c+d");
    BOOST_TEST(m.params[1].first == "part");
    BOOST_TEST(m.params[1].second == "7");
}

BOOST_AUTO_TEST_CASE(malformed_percent_escape_is_not_found) {
    router r;
    r.add("GET", "/files/{file_id}", named("one"));
    BOOST_TEST((r.find("GET", "/files/%zz").result == outcome::not_found));
    BOOST_TEST((r.find("GET", "/files/abc%2").result == outcome::not_found));
    BOOST_TEST((r.find("GET", "/files/abc%").result == outcome::not_found));
}

BOOST_AUTO_TEST_CASE(empty_segment_does_not_fill_a_param) {
    router r;
    r.add("GET", "/files/{file_id}/content", named("content"));
    BOOST_TEST((r.find("GET", "/files//content").result == outcome::not_found));
}

BOOST_AUTO_TEST_CASE(literal_segment_beats_param_in_either_registration_order) {
    router first_param;
    first_param.add("GET", "/batches/{batch_id}", named("one"));
    first_param.add("GET", "/batches/stats", named("stats"));
    BOOST_TEST(who(first_param.find("GET", "/batches/stats")) == "stats");
    BOOST_TEST(who(first_param.find("GET", "/batches/b1")) == "one");

    router first_literal;
    first_literal.add("GET", "/batches/stats", named("stats"));
    first_literal.add("GET", "/batches/{batch_id}", named("one"));
    BOOST_TEST(who(first_literal.find("GET", "/batches/stats")) == "stats");
    BOOST_TEST(who(first_literal.find("GET", "/batches/b1")) == "one");
}

BOOST_AUTO_TEST_CASE(earlier_literal_decides_between_two_partial_literals) {
    router r;
    r.add("GET", "/{a}/x", named("param-first"));
    r.add("GET", "/y/{b}", named("literal-first"));
    BOOST_TEST(who(r.find("GET", "/y/x")) == "literal-first");
}

BOOST_AUTO_TEST_CASE(param_route_with_the_method_wins_over_405_from_a_literal) {
    router r;
    r.add("GET", "/batches/stats", named("stats"));
    r.add("DELETE", "/batches/{batch_id}", named("delete"));
    const auto m = r.find("DELETE", "/batches/stats");
    BOOST_TEST(who(m) == "delete");
    BOOST_TEST(m.params[0].second == "stats");
}

BOOST_AUTO_TEST_CASE(wrong_method_is_405_with_sorted_unique_allow_list) {
    router r;
    r.add("GET", "/files/{file_id}", named("get"));
    r.add("DELETE", "/files/{file_id}", named("delete"));
    r.add("POST", "/files/special", named("post"));
    r.add("GET", "/files/special", named("get-special"));
    const auto m = r.find("PUT", "/v1/files/special");
    BOOST_TEST((m.result == outcome::method_not_allowed));
    BOOST_TEST(m.allow == "DELETE, GET, POST");
    BOOST_TEST(m.target == nullptr);

    const auto other = r.find("PUT", "/files/abc");
    BOOST_TEST((other.result == outcome::method_not_allowed));
    BOOST_TEST(other.allow == "DELETE, GET");
}

BOOST_AUTO_TEST_CASE(unknown_path_is_404_with_empty_allow) {
    router r;
    r.add("GET", "/files", named("list"));
    const auto m = r.find("GET", "/models");
    BOOST_TEST((m.result == outcome::not_found));
    BOOST_TEST(m.allow.empty());
    BOOST_TEST(m.target == nullptr);
    BOOST_TEST((r.find("GET", "files").result == outcome::not_found));
    BOOST_TEST((r.find("GET", "").result == outcome::not_found));
}

BOOST_AUTO_TEST_CASE(method_is_case_sensitive) {
    router r;
    r.add("GET", "/files", named("list"));
    const auto m = r.find("get", "/files");
    BOOST_TEST((m.result == outcome::method_not_allowed));
    BOOST_TEST(m.allow == "GET");
}

BOOST_AUTO_TEST_CASE(target_fields_are_kept) {
    router r;
    route_target t;
    t.max_body_bytes = 1234;
    t.flags = 1;
    t.plugin = "files";
    int ctx = 0;
    t.ctx = &ctx;
    r.add("POST", "/files", t);
    const auto m = r.find("POST", "/files");
    BOOST_REQUIRE(m.target != nullptr);
    BOOST_TEST(m.target->max_body_bytes == 1234u);
    BOOST_TEST(m.target->flags == 1u);
    BOOST_TEST(m.target->ctx == &ctx);
    BOOST_TEST(m.target->plugin == "files");
}

BOOST_AUTO_TEST_CASE(same_shape_with_other_param_name_is_duplicate) {
    router r;
    r.add("GET", "/files/{file_id}", named("files"));
    BOOST_TEST(add_error(r, "GET", "/files/{id}") == route_error::duplicate);
    BOOST_TEST(add_error(r, "GET", "/files/{file_id}") == route_error::duplicate);
    r.add("DELETE", "/files/{id}", named("other method"));
    r.add("GET", "/files/stats", named("literal"));
    r.add("GET", "/files/{file_id}/content", named("longer"));
}

BOOST_AUTO_TEST_CASE(duplicate_message_names_the_first_plugin) {
    router r;
    r.add("GET", "/files", named("files"));
    try {
        r.add("GET", "/files", named("other"));
        BOOST_FAIL("expected a duplicate");
    } catch (const route_error& e) {
        BOOST_TEST(std::string(e.what()) == "route GET /files is already registered by plugin files");
    }
}

BOOST_AUTO_TEST_CASE(malformed_patterns_are_rejected) {
    router r;
    for (const char* p : {"", "files", "/files/{", "/files/}", "/files/{}", "/files/a{id}", "/files/{id}x",
                          "/files//x", "/files/", "/v1/files", "/v1", "/a/{x}/{x}", "/a/{b{c}}"})
        BOOST_TEST((add_error(r, "GET", p) == route_error::invalid_pattern), "pattern \"" << p << "\"");
    BOOST_TEST(add_error(r, "", "/files") == route_error::invalid_pattern);
    BOOST_TEST(add_error(r, "get", "/files") == route_error::invalid_pattern);
}

BOOST_AUTO_TEST_CASE(invalid_pattern_message_names_route_and_reason) {
    router r;
    try {
        r.add("GET", "/v1/files", named("x"));
        BOOST_FAIL("expected an error");
    } catch (const route_error& e) {
        BOOST_TEST(std::string(e.what()) == "route GET /v1/files: must not start with /v1 (added automatically)");
    }
}
