// The throwaway S3 fixture: reachable with the keys it wrote, and a fresh bucket per call.
#define BOOST_TEST_MODULE support_s3
#include <boost/test/unit_test.hpp>

#include "support/s3.hpp"

BOOST_AUTO_TEST_CASE(each_call_gets_its_own_empty_bucket) {
    aq::s3::client_config a = aqt::s3_endpoint(), b = aqt::s3_endpoint();
    BOOST_TEST(a.bucket != b.bucket);
    BOOST_TEST(a.endpoint.rfind("http://127.0.0.1:", 0) == 0u);
    aq::s3::client ca(a), cb(b);
    ca.put_object("only-in-a", "x");
    BOOST_TEST(ca.list_all_objects("").size() == 1u);
    BOOST_TEST(cb.list_all_objects("").empty());
}

BOOST_AUTO_TEST_CASE(without_a_fresh_bucket_the_name_does_not_exist) {
    aq::s3::client c(aqt::s3_endpoint(false));
    try {
        c.list_objects("");
        BOOST_ERROR("listed a bucket that should not exist");
    } catch (const aq::s3::error& e) {
        BOOST_TEST(e.code() == "NoSuchBucket");
    }
}
