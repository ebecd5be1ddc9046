// The one answer a request gets when the database cannot serve it (API.md): 503, the OpenAI
// envelope with code database_unavailable, and a retry-after of 1..10 s. Shared by the files and
// batches fault suites.
#pragma once

#include "support/http_client.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <string>

namespace aqt {

// Why `r` is not exactly that answer, or "" when it is. Safe on any thread (no Boost.Test).
inline std::string not_database_unavailable(const http::response& r) {
    namespace json = boost::json;
    if (r.status != 503) return "status " + std::to_string(r.status) + " " + r.body;
    if (r.header("content-type") != "application/json") return "content-type " + r.header("content-type");
    int retry = std::atoi(r.header("retry-after").c_str());
    if (retry < 1 || retry > 10) return "retry-after '" + r.header("retry-after") + "'";
    boost::system::error_code ec;
    json::value body = json::parse(r.body, ec);
    if (ec) return "body " + r.body;
    for (const char* message : {"The database is unavailable; retry later.", "The database is busy; retry later."})
        if (body == json::value(json::object{{"error", json::object{{"message", message},
                                                                    {"type", "server_error"},
                                                                    {"param", nullptr},
                                                                    {"code", "database_unavailable"}}}}))
            return "";
    return "envelope " + r.body;
}

}  // namespace aqt
