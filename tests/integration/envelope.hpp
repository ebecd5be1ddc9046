// Checks that a response is exactly an OpenAI error envelope:
//   {"error": {"message": <non-empty string>, "type": T, "param": P|null, "code": C|null}}
// with no other keys, Content-Type application/json and an x-request-id header.
#pragma once

#include "support/http_client.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>

namespace aqt::expect {

struct envelope_spec {
    int status;
    std::string type;
    std::optional<std::string> code = std::nullopt;   // nullopt: null
    std::optional<std::string> param = std::nullopt;  // nullopt: null
    std::optional<std::string> message = std::nullopt; // nullopt: any non-empty message
};

inline void error_envelope(const http::response& r, const envelope_spec& spec) {
    BOOST_TEST(r.status == spec.status);
    BOOST_TEST(r.header("content-type") == "application/json");
    BOOST_TEST(!r.header("x-request-id").empty());
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(r.body, ec);
    BOOST_TEST_REQUIRE(!ec, "body is not JSON: " << r.body);
    BOOST_TEST_REQUIRE(v.is_object());
    BOOST_TEST_REQUIRE(v.as_object().size() == 1u, r.body);
    auto* err = v.as_object().if_contains("error");
    BOOST_TEST_REQUIRE((err && err->is_object()), r.body);
    auto& e = err->as_object();
    BOOST_TEST(e.size() == 4u, r.body);
    BOOST_TEST_REQUIRE(e.contains("message"));
    BOOST_TEST_REQUIRE(e.at("message").is_string());
    BOOST_TEST(!e.at("message").as_string().empty());
    if (spec.message) BOOST_TEST(std::string(e.at("message").as_string()) == *spec.message);
    BOOST_TEST_REQUIRE(e.contains("type"));
    BOOST_TEST(e.at("type") == boost::json::value(spec.type), r.body);
    BOOST_TEST_REQUIRE(e.contains("code"));
    BOOST_TEST(e.at("code") == (spec.code ? boost::json::value(*spec.code) : boost::json::value(nullptr)), r.body);
    BOOST_TEST_REQUIRE(e.contains("param"));
    BOOST_TEST(e.at("param") == (spec.param ? boost::json::value(*spec.param) : boost::json::value(nullptr)), r.body);
}

}  // namespace aqt::expect
