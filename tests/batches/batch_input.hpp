// What both batches suites build their inputs from: JSONL lines whose body.user is the custom_id
// (the fake upstream keys its behaviour and counts on it), and the `-- --postgres` switch that
// runs a suite on the throwaway PostgreSQL instead of SQLite.
#pragma once

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace aqt {

inline bool use_postgres() {
    auto& m = boost::unit_test::framework::master_test_suite();
    for (int i = 1; i < m.argc; ++i)
        if (std::string_view(m.argv[i]) == "--postgres") return true;
    return false;
}

inline std::string line(const std::string& custom_id, const std::string& model = "m1",
                        const std::string& url = "/v1/chat/completions") {
    namespace json = boost::json;
    json::object body{{"model", model}, {"user", custom_id}, {"messages", json::array{{{"role", "user"}, {"content", "hi"}}}}};
    return json::serialize(json::object{{"custom_id", custom_id}, {"method", "POST"}, {"url", url}, {"body", body}}) + "\n";
}

inline std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace aqt
