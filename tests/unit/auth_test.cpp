#define BOOST_TEST_MODULE auth
#include <boost/test/unit_test.hpp>

#include "auth.hpp"

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

using aqd::authenticator;
using aqd::sha256_hex;
using aqd::token_config;

namespace {

authenticator two_tokens() {
    return authenticator({token_config{"alice-laptop", "alice", "", sha256_hex("sk-alice")},
                          token_config{"ci", "ci-bot", "platform", sha256_hex("sk-ci")}});
}

}  // namespace

BOOST_AUTO_TEST_CASE(sha256_hex_matches_known_vectors) {
    BOOST_TEST(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // The view's length counts, not a terminator.
    BOOST_TEST(sha256_hex(std::string_view("a\0b", 3)) == "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138");
}

BOOST_AUTO_TEST_CASE(matching_token_yields_its_principal) {
    const authenticator auth = two_tokens();
    auto p = auth.authenticate("Bearer sk-alice");
    BOOST_REQUIRE(p != nullptr);
    BOOST_TEST(p->token_name == "alice-laptop");
    BOOST_TEST(p->user == "alice");
    BOOST_TEST(p->team == "");

    auto ci = auth.authenticate("Bearer sk-ci");
    BOOST_REQUIRE(ci != nullptr);
    BOOST_TEST(ci->token_name == "ci");
    BOOST_TEST(ci->user == "ci-bot");
    BOOST_TEST(ci->team == "platform");
}

BOOST_AUTO_TEST_CASE(scheme_is_case_insensitive_and_spaces_may_repeat) {
    const authenticator auth = two_tokens();
    for (const char* header : {"bearer sk-alice", "BEARER sk-alice", "BeArEr sk-alice", "Bearer   sk-alice"}) {
        auto p = auth.authenticate(header);
        BOOST_TEST((p != nullptr && p->user == "alice"), header);
    }
}

BOOST_AUTO_TEST_CASE(malformed_or_unknown_credentials_are_rejected) {
    const authenticator auth = two_tokens();
    for (const char* header : {"", "Bearer", "Bearer ", "Bearer    ", "Bearersk-alice", "Basic sk-alice",
                               "sk-alice", "Bearer sk-alicex", "Bearer sk-alic", "Bearer SK-ALICE",
                               " Bearer sk-alice", "Token sk-alice"})
        BOOST_TEST(auth.authenticate(header) == nullptr, "header \"" << header << "\"");
}

BOOST_AUTO_TEST_CASE(no_tokens_configured_rejects_everything) {
    const authenticator auth({});
    BOOST_TEST(auth.authenticate("Bearer anything") == nullptr);
}

BOOST_AUTO_TEST_CASE(principal_outlives_the_call) {
    const authenticator auth = two_tokens();
    auto first = auth.authenticate("Bearer sk-ci");
    auto second = auth.authenticate("Bearer sk-ci");
    BOOST_TEST(first == second);
}

BOOST_AUTO_TEST_CASE(malformed_digest_is_refused_at_construction) {
    BOOST_CHECK_THROW(authenticator({token_config{"t", "u", "", "abc"}}), std::invalid_argument);
    BOOST_CHECK_THROW(authenticator({token_config{"t", "u", "", std::string(64, 'G')}}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(replaced_tokens_take_effect_at_once_and_earlier_principals_live_on) {
    authenticator auth = two_tokens();
    auto before = auth.authenticate("Bearer sk-alice");
    BOOST_REQUIRE(before);
    auth.replace({token_config{"dave-laptop", "dave", "", sha256_hex("sk-dave")}});
    BOOST_TEST(auth.size() == 1u);
    BOOST_TEST(auth.authenticate("Bearer sk-alice") == nullptr);
    auto dave = auth.authenticate("Bearer sk-dave");
    BOOST_REQUIRE(dave);
    BOOST_TEST(dave->user == "dave");
    // A request that authenticated before the reload still holds a whole principal.
    BOOST_TEST(before->token_name == "alice-laptop");
    BOOST_TEST(before->user == "alice");
}

BOOST_AUTO_TEST_CASE(a_refused_replacement_changes_nothing) {
    authenticator auth = two_tokens();
    BOOST_CHECK_THROW(auth.replace({token_config{"t", "u", "", "abc"}}), std::invalid_argument);
    BOOST_TEST(auth.size() == 2u);
    BOOST_TEST(auth.authenticate("Bearer sk-alice") != nullptr);
}

BOOST_AUTO_TEST_CASE(sha256_hex_is_the_same_on_many_threads_at_once) {
    // Each thread keeps its own OpenSSL context; the digest is fetched once for all of them.
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i)
                if (sha256_hex("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") ++wrong;
        });
    for (auto& t : threads) t.join();
    BOOST_TEST(wrong.load() == 0);
}
