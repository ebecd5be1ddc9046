// AWS Signature Version 4 against AWS's own published vectors:
//   - the SigV4 test suite (service "service", key AKIDEXAMPLE, 2015-08-30T12:36:00Z): get-vanilla,
//     query ordering, empty query values, unreserved characters, UTF-8 in path and query, a space
//     in the path, a form POST, header value trimming, a session token;
//   - the S3 documentation's examples (bucket "examplebucket", key AKIAIOSFODNN7EXAMPLE,
//     2013-05-24): GET Object with Range, PUT Object with a '$' in the key, GET Bucket lifecycle
//     (a query key without value) and GET Bucket (List Objects) with a sorted query.
// Canonical requests and strings to sign are asserted in full where AWS publishes them; the rest
// through the final signature, which depends on every byte of both.
#include <boost/test/unit_test.hpp>

#include "s3/sigv4.hpp"

#include <chrono>

using namespace aq::s3;

namespace {

const credentials suite_creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const credentials s3_doc_creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr std::string_view suite_date = "20150830T123600Z";
constexpr std::string_view s3_doc_date = "20130524T000000Z";
const std::string empty_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string suite_authorization(std::string_view signed_headers, std::string_view signature) {
    return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
           std::string(signed_headers) + ", Signature=" + std::string(signature);
}

// A request of the test suite: host example.amazonaws.com, its date, an empty body.
request_to_sign suite_request(std::string method, std::string path, query_list query = {}) {
    return request_to_sign{std::move(method), std::move(path), std::move(query),
                           {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", std::string(suite_date)}},
                           empty_hash};
}

signature_parts suite_sign(const request_to_sign& r) { return sign(r, suite_creds, suite_date, "us-east-1", "service"); }

request_to_sign s3_doc_request(std::string method, std::string path, query_list query = {},
                               header_list extra = {}, std::string payload_hash = empty_hash) {
    request_to_sign r{std::move(method), std::move(path), std::move(query),
                      {{"Host", "examplebucket.s3.amazonaws.com"},
                       {"x-amz-content-sha256", payload_hash},
                       {"x-amz-date", std::string(s3_doc_date)}},
                      payload_hash};
    for (auto& h : extra) r.headers.push_back(std::move(h));
    return r;
}

signature_parts s3_doc_sign(const request_to_sign& r) { return sign(r, s3_doc_creds, s3_doc_date, "us-east-1", "s3"); }

}  // namespace

BOOST_AUTO_TEST_SUITE(aws_sigv4_test_suite)

BOOST_AUTO_TEST_CASE(get_vanilla) {
    auto p = suite_sign(suite_request("GET", "/"));
    BOOST_TEST(p.canonical_request ==
               "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + empty_hash);
    BOOST_TEST(p.authorization ==
               suite_authorization("host;x-amz-date",
                                   "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

BOOST_AUTO_TEST_CASE(get_vanilla_query_order_key_sorts_by_name_then_value) {
    // GET /?Param1=value2&Param1=Value1: 'V' sorts before 'v'.
    auto p = suite_sign(suite_request("GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}}));
    BOOST_TEST(p.canonical_request ==
               "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
               "host;x-amz-date\n" + empty_hash);
    BOOST_TEST(p.string_to_sign ==
               "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
               "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89");
    BOOST_TEST(p.authorization ==
               suite_authorization("host;x-amz-date",
                                   "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"));
}

BOOST_AUTO_TEST_CASE(get_vanilla_query_order_key_case) {
    auto p = suite_sign(suite_request("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}));
    BOOST_TEST(p.signature == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

BOOST_AUTO_TEST_CASE(get_vanilla_empty_query_key) {
    auto p = suite_sign(suite_request("GET", "/", {{"Param1", "value1"}}));
    BOOST_TEST(p.signature == "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

BOOST_AUTO_TEST_CASE(post_vanilla_empty_query_value) {
    auto p = suite_sign(suite_request("POST", "/", {{"Param1", "value1"}}));
    BOOST_TEST(p.signature == "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

BOOST_AUTO_TEST_CASE(get_unreserved_characters_stay_as_they_are) {
    const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    auto path = suite_sign(suite_request("GET", "/" + unreserved));
    BOOST_TEST(path.signature == "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
    auto query = suite_sign(suite_request("GET", "/", {{unreserved, unreserved}}));
    BOOST_TEST(query.signature == "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

BOOST_AUTO_TEST_CASE(get_utf8_path_and_query_are_percent_encoded_bytes) {
    auto path = suite_sign(suite_request("GET", "/\xE1\x88\xB4"));  // U+1234
    BOOST_TEST(path.canonical_request.substr(0, 15) == "GET\n/%E1%88%B4\n");
    BOOST_TEST(path.signature == "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
    auto query = suite_sign(suite_request("GET", "/", {{"\xE1\x88\xB4", "bar"}}));
    BOOST_TEST(query.canonical_request.find("\n%E1%88%B4=bar\n") != std::string::npos);
    BOOST_TEST(query.signature == "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

BOOST_AUTO_TEST_CASE(get_space_is_percent_20_in_the_path) {
    auto p = suite_sign(suite_request("GET", "/example space/"));
    BOOST_TEST(p.canonical_request.substr(0, 22) == "GET\n/example%20space/\n");
    BOOST_TEST(p.signature == "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
}

BOOST_AUTO_TEST_CASE(post_x_www_form_urlencoded_signs_content_type) {
    request_to_sign r = suite_request("POST", "/");
    r.headers.insert(r.headers.begin(), {"Content-Type", "application/x-www-form-urlencoded"});
    r.payload_hash = sha256_hex("Param1=value1");
    auto p = suite_sign(r);
    BOOST_TEST(p.canonical_request ==
               "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
               "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
               "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    BOOST_TEST(p.string_to_sign ==
               "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
               "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
    BOOST_TEST(p.authorization ==
               suite_authorization("content-type;host;x-amz-date",
                                   "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"));
}

BOOST_AUTO_TEST_CASE(header_values_are_trimmed_and_repeated_names_joined) {
    // get-header-value-trim: "My-Header1: value1" and "My-Header2: \"a   b   c\"".
    request_to_sign r = suite_request("GET", "/");
    r.headers.emplace_back("My-Header1", " value1");
    r.headers.emplace_back("My-Header2", " \"a   b   c\"");
    auto p = suite_sign(r);
    BOOST_TEST(p.canonical_request.find("my-header1:value1\nmy-header2:\"a b c\"\n") != std::string::npos);
    BOOST_TEST(p.signed_headers == "host;my-header1;my-header2;x-amz-date");
    BOOST_TEST(p.signature == "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
    // get-header-key-duplicate: values kept in order, joined with ','.
    request_to_sign dup = suite_request("GET", "/");
    dup.headers.emplace_back("My-Header1", "value2");
    dup.headers.emplace_back("My-Header1", "value2");
    dup.headers.emplace_back("My-Header1", "value1");
    BOOST_TEST(suite_sign(dup).signature == "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

BOOST_AUTO_TEST_CASE(post_sts_header_before_signs_the_session_token) {
    request_to_sign r = suite_request("POST", "/");
    r.headers.emplace_back(
        "X-Amz-Security-Token",
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwt"
        "hAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHN"
        "VXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLx"
        "BA==");
    auto p = suite_sign(r);
    BOOST_TEST(p.authorization ==
               suite_authorization("host;x-amz-date;x-amz-security-token",
                                   "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(s3_documentation_examples)

BOOST_AUTO_TEST_CASE(signing_key_of_the_examples) {
    BOOST_TEST(to_hex(signing_key(s3_doc_creds.secret_key, "20130524", "us-east-1", "s3")) ==
               "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
}

BOOST_AUTO_TEST_CASE(get_object_with_range) {
    auto p = s3_doc_sign(s3_doc_request("GET", "/test.txt", {}, {{"Range", "bytes=0-9"}}));
    BOOST_TEST(p.canonical_request ==
               "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
               "x-amz-content-sha256:" + empty_hash + "\nx-amz-date:20130524T000000Z\n\n"
               "host;range;x-amz-content-sha256;x-amz-date\n" + empty_hash);
    BOOST_TEST(p.string_to_sign ==
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    BOOST_TEST(p.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    BOOST_TEST(p.authorization ==
               "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
               "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
               "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

BOOST_AUTO_TEST_CASE(put_object_with_a_dollar_in_the_key_and_a_signed_payload) {
    std::string body_hash = sha256_hex("Welcome to Amazon S3.");
    BOOST_TEST(body_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    auto p = s3_doc_sign(s3_doc_request("PUT", "/test$file.text", {},
                                        {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                         {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                                        body_hash));
    BOOST_TEST(p.canonical_request ==
               "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
               "x-amz-content-sha256:" + body_hash + "\nx-amz-date:20130524T000000Z\n"
               "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
               "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n" + body_hash);
    BOOST_TEST(sha256_hex(p.canonical_request) == "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    BOOST_TEST(p.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

BOOST_AUTO_TEST_CASE(get_bucket_lifecycle_signs_a_query_key_without_value_with_equals) {
    auto p = s3_doc_sign(s3_doc_request("GET", "/", {{"lifecycle", ""}}));
    BOOST_TEST(p.canonical_request ==
               "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" + empty_hash +
               "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" + empty_hash);
    BOOST_TEST(p.string_to_sign ==
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
    BOOST_TEST(p.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

BOOST_AUTO_TEST_CASE(get_bucket_list_objects_sorts_the_query) {
    auto p = s3_doc_sign(s3_doc_request("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}));
    BOOST_TEST(p.canonical_request ==
               "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" + empty_hash +
               "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" + empty_hash);
    BOOST_TEST(p.string_to_sign ==
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
    BOOST_TEST(p.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(encoding)

BOOST_AUTO_TEST_CASE(keys_are_encoded_once_keeping_slashes) {
    BOOST_TEST(canonical_path("/bucket/dir/a b+c~\xC3\xBC") == "/bucket/dir/a%20b%2Bc~%C3%BC");
    BOOST_TEST(canonical_path("/bucket/100%") == "/bucket/100%25");  // a literal '%' is data, not an escape
    BOOST_TEST(canonical_path("") == "/");
    BOOST_TEST(uri_encode("a/b", false) == "a%2Fb");
}

BOOST_AUTO_TEST_CASE(query_values_are_rfc3986_encoded_and_empty_values_keep_equals) {
    BOOST_TEST(canonical_query({{"uploads", ""}}) == "uploads=");
    BOOST_TEST(canonical_query({{"prefix", "dir/a b+"}, {"list-type", "2"}, {"continuation-token", "x=="}}) ==
               "continuation-token=x%3D%3D&list-type=2&prefix=dir%2Fa%20b%2B");
}

BOOST_AUTO_TEST_CASE(amz_date_is_utc_basic_format) {
    using namespace std::chrono;
    auto t = sys_days{year{2013} / May / 24} + hours{1} + minutes{2} + seconds{3};
    BOOST_TEST(amz_date(t) == "20130524T010203Z");
}

BOOST_AUTO_TEST_SUITE_END()
