#define BOOST_TEST_MODULE random_id
#include <boost/test/unit_test.hpp>

#include <aqueduct/plugin.hpp>

#include <array>
#include <set>
#include <string>

// aq::random_id names every request, file, batch and upload. Its bytes come from getrandom,
// and a byte of 248 or more is dropped so that all 62 characters are equally likely.

namespace {

constexpr std::string_view alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

}  // namespace

BOOST_AUTO_TEST_CASE(an_id_is_the_prefix_and_exactly_length_base62_characters) {
    for (std::size_t length : {0u, 1u, 24u, 255u, 256u, 1000u}) {
        const std::string id = aq::random_id("file-", length);
        BOOST_TEST_REQUIRE(id.size() == 5 + length);
        BOOST_TEST(id.substr(0, 5) == "file-");
        BOOST_TEST(id.find_first_not_of(alphabet, 5) == std::string::npos);
    }
    BOOST_TEST(aq::random_id("").size() == 24u);
}

BOOST_AUTO_TEST_CASE(ten_thousand_ids_are_distinct) {
    std::set<std::string> ids;
    for (int i = 0; i < 10000; ++i) ids.insert(aq::random_id("req_"));
    BOOST_TEST(ids.size() == 10000u);
}

BOOST_AUTO_TEST_CASE(every_character_is_equally_likely) {
    // 480,000 characters: 7,742 of each expected, with a standard deviation of about 87. A
    // bound of 6% is 5 deviations, so a fair generator fails it about once in ten million runs;
    // keeping the bytes from 248 to 255 would give the first eight characters 25% more.
    std::array<int, 62> counts{};
    for (int i = 0; i < 20000; ++i)
        for (char c : aq::random_id("", 24)) ++counts[alphabet.find(c)];
    const double expected = 20000.0 * 24 / 62;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        BOOST_TEST_INFO("character " << alphabet[i]);
        BOOST_TEST(counts[i] > expected * 0.94);
        BOOST_TEST(counts[i] < expected * 1.06);
    }
}
