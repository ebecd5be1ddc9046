// Endpoint URLs and the two addressing styles.
#include <boost/test/unit_test.hpp>

#include "s3/client.hpp"
#include "s3/endpoint.hpp"

#include <stdexcept>

using namespace aq::s3;

BOOST_AUTO_TEST_SUITE(endpoints)

BOOST_AUTO_TEST_CASE(parses_scheme_host_port_and_base_path) {
    endpoint a = parse_endpoint("http://127.0.0.1:8080");
    BOOST_TEST(!a.tls);
    BOOST_TEST(a.host == "127.0.0.1");
    BOOST_TEST(a.port == "8080");
    BOOST_TEST(a.authority == "127.0.0.1:8080");
    BOOST_TEST(a.base_path == "");

    endpoint b = parse_endpoint("https://s3.eu-west-1.amazonaws.com/");
    BOOST_TEST(b.tls);
    BOOST_TEST(b.port == "443");
    BOOST_TEST(b.authority == "s3.eu-west-1.amazonaws.com");
    BOOST_TEST(b.base_path == "");

    endpoint c = parse_endpoint("http://[::1]:9000/store/s3/");
    BOOST_TEST(c.host == "::1");
    BOOST_TEST(c.authority == "[::1]:9000");
    BOOST_TEST(c.base_path == "/store/s3");
}

BOOST_AUTO_TEST_CASE(refuses_other_urls) {
    for (const char* url : {"", "127.0.0.1:9000", "ftp://h", "http://user:pw@h", "http://h/?x=1", "http://h/#f",
                            "http://h:0", "http:///path"})
        BOOST_CHECK_THROW(parse_endpoint(url), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(path_style_puts_the_bucket_in_the_path) {
    endpoint ep = parse_endpoint("http://127.0.0.1:8080");
    endpoint to = bucket_endpoint(ep, addressing::path, "bkt");
    BOOST_TEST(to.authority == "127.0.0.1:8080");
    BOOST_TEST(object_path(ep, addressing::path, "bkt", "a b/c") == "/bkt/a b/c");
    BOOST_TEST(object_path(ep, addressing::path, "bkt", "") == "/bkt");
    BOOST_TEST(object_path(parse_endpoint("http://h/base"), addressing::path, "bkt", "k") == "/base/bkt/k");
}

BOOST_AUTO_TEST_CASE(virtual_host_puts_the_bucket_in_the_host) {
    endpoint ep = parse_endpoint("https://s3.eu-west-1.amazonaws.com");
    endpoint to = bucket_endpoint(ep, addressing::virtual_host, "bkt");
    BOOST_TEST(to.host == "bkt.s3.eu-west-1.amazonaws.com");  // connected to and checked in the certificate
    BOOST_TEST(to.authority == "bkt.s3.eu-west-1.amazonaws.com");
    BOOST_TEST(object_path(ep, addressing::virtual_host, "bkt", "a/b") == "/a/b");
    BOOST_TEST(object_path(ep, addressing::virtual_host, "bkt", "") == "/");
    BOOST_CHECK_THROW(bucket_endpoint(parse_endpoint("http://127.0.0.1:9000"), addressing::virtual_host, "bkt"),
                      std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(client_config_is_checked_setting_by_setting) {
    client_config good;
    good.endpoint = "http://127.0.0.1:9000";
    good.bucket = "my-bucket.1";
    good.access_key = "a";
    good.secret_key = "s";
    BOOST_CHECK_NO_THROW(validate(good));

    auto refused = [&](auto change, std::string_view setting) {
        client_config c = good;
        change(c);
        try {
            validate(c);
            BOOST_ERROR("accepted a bad " << setting);
        } catch (const std::invalid_argument& e) {
            BOOST_TEST(std::string(e.what()).rfind(std::string(setting) + ":", 0) == 0u, e.what());
        }
    };
    refused([](client_config& c) { c.endpoint = "s3.example.com"; }, "endpoint");
    refused([](client_config& c) { c.bucket = "ab"; }, "bucket");
    refused([](client_config& c) { c.bucket = "Upper"; }, "bucket");
    refused([](client_config& c) { c.bucket = "-dash"; }, "bucket");
    refused([](client_config& c) { c.bucket = "a..b"; }, "bucket");
    refused([](client_config& c) { c.access_key.clear(); }, "access_key");
    refused([](client_config& c) { c.secret_key.clear(); }, "secret_key");
    refused([](client_config& c) { c.part_size = (5 << 20) - 1; }, "part_size");
    refused([](client_config& c) { c.retry.max_attempts = 0; }, "retry.max_attempts");
    refused([](client_config& c) { c.style = addressing::virtual_host; }, "endpoint");  // an IP cannot carry a bucket
}

BOOST_AUTO_TEST_SUITE_END()
