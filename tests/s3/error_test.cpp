// S3 error answers: code, message and request id read from the XML, the kind, and the retry rule.
#include <boost/test/unit_test.hpp>

#include "s3/error.hpp"

using namespace aq::s3;

namespace {
std::string error_doc(std::string_view code, std::string_view message) {
    return "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>" + std::string(code) + "</Code><Message>" +
           std::string(message) + "</Message><RequestId>tx123</RequestId></Error>";
}
}  // namespace

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(reads_code_message_and_request_id) {
    error e = error_from_response("GET object \"k\"", 404, error_doc("NoSuchKey", "The specified key does not exist."), "");
    BOOST_TEST(e.status() == 404);
    BOOST_TEST(e.code() == "NoSuchKey");
    BOOST_TEST(e.message() == "The specified key does not exist.");
    BOOST_TEST(e.request_id() == "tx123");
    BOOST_TEST(e.not_found());
    BOOST_TEST(!e.retryable());
    BOOST_TEST(std::string(e.what()) ==
               "S3 GET object \"k\": 404 NoSuchKey: The specified key does not exist. (request id tx123)");
}

BOOST_AUTO_TEST_CASE(classifies_each_answer_and_its_retry_rule) {
    struct row {
        int status;
        const char* code;
        error_kind kind;
        bool retryable;
    } rows[] = {
        {503, "SlowDown", error_kind::throttled, true},
        {503, "ServiceUnavailable", error_kind::throttled, true},
        {429, "TooManyRequests", error_kind::throttled, true},
        {500, "InternalError", error_kind::server, true},
        {502, "BadGateway", error_kind::server, true},
        {501, "NotImplemented", error_kind::rejected, false},  // a feature the server lacks (chunked PUT on AWS)
        {200, "InternalError", error_kind::server, true},  // CompleteMultipartUpload's 200 with an error
        {400, "RequestTimeout", error_kind::rejected, true},
        {403, "SignatureDoesNotMatch", error_kind::denied, false},
        {403, "InvalidAccessKeyId", error_kind::denied, false},
        {404, "NoSuchBucket", error_kind::not_found, false},
        {404, "NoSuchUpload", error_kind::not_found, false},
        {412, "PreconditionFailed", error_kind::precondition, false},
        {416, "InvalidRange", error_kind::rejected, false},
        {400, "EntityTooSmall", error_kind::rejected, false},
        {400, "BadDigest", error_kind::rejected, false},
    };
    for (const auto& r : rows) {
        error e = error_from_response("op", r.status, error_doc(r.code, "m"), "");
        BOOST_TEST_CONTEXT(r.status << " " << r.code) {
            BOOST_TEST(e.code() == r.code);
            BOOST_TEST(to_string(e.kind()) == to_string(r.kind));
            BOOST_TEST(e.retryable() == r.retryable);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_bodyless_or_unreadable_answer_gets_its_code_from_the_status) {
    error head404 = error_from_response("HEAD object \"k\"", 404, "", "tx9");
    BOOST_TEST(head404.code() == "NotFound");
    BOOST_TEST(head404.not_found());
    BOOST_TEST(head404.request_id() == "tx9");
    error html = error_from_response("op", 502, "<html><body>Bad Gateway</body></html>", "");
    BOOST_TEST(html.code() == "HTTP502");
    BOOST_TEST(html.retryable());
    error truncated = error_from_response("op", 503, "<Error><Code>SlowD", "");
    BOOST_TEST(truncated.code() == "ServiceUnavailable");
    BOOST_TEST(truncated.retryable());
}

BOOST_AUTO_TEST_CASE(network_and_protocol_failures) {
    error net = network_error("PUT object \"k\"", "cannot connect to 127.0.0.1:1: Connection refused", true);
    BOOST_TEST(net.status() == 0);
    BOOST_TEST(net.retryable());
    BOOST_TEST(std::string(net.what()) == "S3 PUT object \"k\": cannot connect to 127.0.0.1:1: Connection refused");
    error proto = protocol_error("op", "the answer is not XML");
    BOOST_TEST(!proto.retryable());
    BOOST_TEST(to_string(proto.kind()) == "protocol");
}

BOOST_AUTO_TEST_SUITE_END()
