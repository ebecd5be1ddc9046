// The Prometheus text exposition format as the tests read it: every sample line of a scrape,
// keyed by its series ("name{label=\"value\",...}" exactly as written, or the bare name), so a
// test can compare two scrapes and check exact increments.
//
//   auto before = aqt::prometheus::parse(scrape());
//   ...
//   BOOST_TEST(aqt::prometheus::delta(before, after, R"(aqueduct_http_requests_total{route="/echo",method="POST",status="200"})") == 3);
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace aqt::prometheus {

using samples = std::map<std::string, double, std::less<>>;

// Throws std::runtime_error on a sample line without a value.
samples parse(std::string_view text);

// The value of a series; 0 when absent (a counter not yet exported counts as 0).
double value(const samples& s, std::string_view series);
double delta(const samples& before, const samples& after, std::string_view series);

// Runs `promtool check metrics` on the text; returns its output, empty when it accepts it.
// Throws std::runtime_error when promtool cannot be run.
std::string promtool_problems(std::string_view text);

}  // namespace aqt::prometheus
