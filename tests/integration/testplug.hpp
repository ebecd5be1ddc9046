// Gateway configs with the testplug fixture enabled (tests/fixtures/testplug.cpp).
#pragma once

#include <boost/json.hpp>

namespace aqt {

// {"plugins": {"testplug": {"enabled": true}}} plus the given top-level keys.
inline boost::json::object with_testplug(boost::json::object extra = {}) {
    boost::json::object cfg = std::move(extra);
    cfg["plugins"] = boost::json::object{{"testplug", boost::json::object{{"enabled", true}}}};
    return cfg;
}

// The bytes GET /stream?bytes=N sends: byte i is 'a' + i % 26.
inline std::string stream_pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
}

}  // namespace aqt
