// host/metrics: the registry behind /metrics. Exact exposition text, the naming rules, bucket
// edges, the series cap, and counts that stay exact under concurrent updates.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include "metrics.hpp"

#include <limits>
#include <thread>
#include <vector>

using namespace aqd::metrics;

BOOST_AUTO_TEST_CASE(exposition_is_the_text_format_0_0_4) {
    registry r;
    family& requests = r.add(kind::counter, "demo_requests_total", "Requests.\nBy code.", {"code", "path"});
    requests.counter({"200", "/b"}).add(2);
    requests.counter({"200", "/a"}).add(1);
    requests.counter({"404", "q\"uote\\back\nline"}).add(7);
    r.add(kind::gauge, "demo_level", "Level.").gauge({}).set(-5);
    family& sizes = r.add(kind::histogram, "demo_size_bytes", "Sizes.", {}, {1, 2.5, 1e6});
    for (double v : {0.5, 1.0, 2.5, 2.6, 1e9}) sizes.histogram({}).observe(v);
    r.add_sampled(kind::gauge, "demo_sampled", "Sampled.", [] { return 0.25; });
    BOOST_TEST(r.expose() ==
               "# HELP demo_requests_total Requests.\\nBy code.\n"
               "# TYPE demo_requests_total counter\n"
               "demo_requests_total{code=\"200\",path=\"/a\"} 1\n"
               "demo_requests_total{code=\"200\",path=\"/b\"} 2\n"
               "demo_requests_total{code=\"404\",path=\"q\\\"uote\\\\back\\nline\"} 7\n"
               "# HELP demo_level Level.\n"
               "# TYPE demo_level gauge\n"
               "demo_level -5\n"
               "# HELP demo_size_bytes Sizes.\n"
               "# TYPE demo_size_bytes histogram\n"
               "demo_size_bytes_bucket{le=\"1\"} 2\n"
               "demo_size_bytes_bucket{le=\"2.5\"} 3\n"
               "demo_size_bytes_bucket{le=\"1e+06\"} 4\n"
               "demo_size_bytes_bucket{le=\"+Inf\"} 5\n"
               "demo_size_bytes_sum 1.0000000066e+09\n"
               "demo_size_bytes_count 5\n"
               "# HELP demo_sampled Sampled.\n"
               "# TYPE demo_sampled gauge\n"
               "demo_sampled 0.25\n");
}

BOOST_AUTO_TEST_CASE(a_series_is_the_same_object_for_the_same_values) {
    registry r;
    family& f = r.add(kind::counter, "demo_total", "Demo.", {"a"});
    BOOST_TEST(f.at({"x"}) == f.at({"x"}));
    BOOST_TEST(f.at({"x"}) != f.at({"y"}));
    BOOST_TEST(f.at({}) == nullptr);            // wrong count
    BOOST_TEST(f.at({"x", "y"}) == nullptr);
    BOOST_TEST(f.at({"\xff"}) == nullptr);      // not UTF-8
    BOOST_TEST(f.at({std::string(257, 'v')}) == nullptr);
    BOOST_TEST(f.at({std::string(256, 'v')}) != nullptr);
}

BOOST_AUTO_TEST_CASE(names_labels_and_buckets_follow_the_rules) {
    registry r;
    const auto refused = [&](kind k, const char* name, std::vector<std::string> labels, std::vector<double> buckets,
                             metric_error::reason_t why) {
        try {
            r.add(k, name, "help", std::move(labels), std::move(buckets));
            BOOST_ERROR("accepted " << name);
        } catch (const metric_error& e) {
            BOOST_TEST(e.reason == why, name << ": " << e.what());
        }
    };
    using m = metric_error;
    refused(kind::counter, "Upper_total", {}, {}, m::invalid);
    refused(kind::counter, "9lives_total", {}, {}, m::invalid);
    refused(kind::counter, "has:colon_total", {}, {}, m::invalid);
    refused(kind::counter, "no_suffix", {}, {}, m::invalid);
    refused(kind::gauge, "level_total", {}, {}, m::invalid);
    refused(kind::gauge, "level_sum", {}, {}, m::invalid);
    refused(kind::gauge, "level_bucket", {}, {}, m::invalid);
    refused(kind::gauge, "level_count", {}, {}, m::invalid);
    refused(kind::counter, "x_total", {"Bad"}, {}, m::invalid);
    refused(kind::counter, "x_total", {"__reserved"}, {}, m::invalid);
    refused(kind::counter, "x_total", {"a", "a"}, {}, m::invalid);
    refused(kind::counter, "x_total", {"a", "b", "c", "d", "e", "f", "g", "h", "i"}, {}, m::invalid);
    refused(kind::histogram, "h_seconds", {"le"}, {1}, m::invalid);
    refused(kind::histogram, "h_seconds", {}, {}, m::invalid);
    refused(kind::histogram, "h_seconds", {}, {2, 1}, m::invalid);
    refused(kind::histogram, "h_seconds", {}, {1, 1}, m::invalid);
    refused(kind::histogram, "h_seconds", {}, {1, std::numeric_limits<double>::quiet_NaN()}, m::invalid);
    refused(kind::gauge, "g", {}, {1}, m::invalid);
    BOOST_CHECK_THROW(r.add(kind::gauge, "g", ""), metric_error);  // help is required
    r.add(kind::counter, "x_total", "help", {"a"});
    refused(kind::counter, "x_total", {}, {}, m::exists);
    refused(kind::gauge, "x_total", {}, {}, m::invalid);
    // +Inf as the last bound is the implied one.
    family& h = r.add(kind::histogram, "h_seconds", "help", {}, {1, std::numeric_limits<double>::infinity()});
    h.histogram({}).observe(5);
    BOOST_TEST(r.expose().find("h_seconds_bucket{le=\"1\"} 0\nh_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(past_the_series_cap_values_go_nowhere) {
    registry r;
    family& f = r.add(kind::counter, "many_total", "Many.", {"id"});
    for (std::size_t i = 0; i < registry::max_series_per_family; ++i) f.counter({std::to_string(i)}).add(1);
    series* extra = f.at({"one-too-many"});
    BOOST_REQUIRE(extra != nullptr);
    static_cast<counter_series*>(extra)->add(100);
    BOOST_TEST(f.at({"another"}) == extra);  // one sink for every value past the cap
    BOOST_TEST(f.at({"5"}) != extra);        // existing series still resolve
    const std::string text = r.expose();
    BOOST_TEST(text.find("one-too-many") == std::string::npos);
    BOOST_TEST(text.find(" 100\n") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(concurrent_updates_are_all_counted) {
    registry r;
    counter_series& c = r.add(kind::counter, "c_total", "C.").counter({});
    gauge_series& g = r.add(kind::gauge, "g", "G.").gauge({});
    histogram_series& h = r.add(kind::histogram, "h", "H.", {}, {0.5}).histogram({});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100000; ++i) {
                c.add(1);
                g.add(i % 2 ? 1 : -1);
                h.observe(0.25);
            }
        });
    for (auto& t : threads) t.join();
    BOOST_TEST(c.value() == 400000u);
    BOOST_TEST(g.value() == 0);
    const auto snap = h.read();
    BOOST_TEST(snap.cumulative[0] == 400000u);
    BOOST_TEST(snap.cumulative[1] == 400000u);
    BOOST_TEST(snap.sum == 100000.0);  // 0.25 is exact in binary: no rounding in the sum
}

BOOST_AUTO_TEST_CASE(nan_observations_are_ignored) {
    registry r;
    histogram_series& h = r.add(kind::histogram, "h", "H.", {}, {1}).histogram({});
    h.observe(std::numeric_limits<double>::quiet_NaN());
    h.observe(-std::numeric_limits<double>::infinity());
    const auto snap = h.read();
    BOOST_TEST(snap.cumulative[1] == 1u);
    BOOST_TEST(snap.cumulative[0] == 1u);
}

BOOST_AUTO_TEST_CASE(floats_are_written_as_go_writes_them) {
    // strconv.FormatFloat(v, 'g', -1, 64), as client_golang writes le labels and values.
    registry r;
    const std::vector<double> bounds = {1e-05, 0.0001, 0.005, 1, 2.5, 123456, 1e6, 1048576, 3e21};
    family& h = r.add(kind::histogram, "h", "H.", {}, bounds);
    h.histogram({}).observe(0.1);
    const std::string text = r.expose();
    for (const char* le : {"1e-05", "0.0001", "0.005", "1", "2.5", "123456", "1.048576e+06", "1e+06", "3e+21"})
        BOOST_TEST(text.find(std::string("h_bucket{le=\"") + le + "\"}") != std::string::npos, le << "\n" << text);
    BOOST_TEST(text.find("h_sum 0.1\n") != std::string::npos);
}
