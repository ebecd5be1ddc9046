// The S3 library's unit suites (no server): sigv4, xml, error, endpoint, retry.
#define BOOST_TEST_MODULE s3_unit
#include <boost/test/unit_test.hpp>
