// A principal's view of the Batch API through a real aqueductd, as the batches suites drive it:
// upload a file, create, get, wait for, cancel a batch, and read a result file.
#pragma once

#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>

namespace aqt {

struct batch_client {
    http::client http;
    batch_client(gateway& gw, const std::string& who) : http(gw.port()) {
        http.default_headers["Authorization"] = gw.bearer(who);
    }

    std::string upload(const std::string& content, const std::string& purpose = "batch") {
        multipart form;
        form.field("purpose", purpose).file("file", "input.jsonl", content);
        auto r = http.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
        BOOST_REQUIRE_MESSAGE(r.status == 200, "upload: " + std::to_string(r.status) + " " + r.body);
        return std::string(r.json().at("id").as_string());
    }

    http::response create(boost::json::object body) {
        return http.request("POST", "/v1/batches", {{"Content-Type", "application/json"}}, boost::json::serialize(body));
    }

    std::string create_batch(const std::string& file_id, boost::json::object extra = {}) {
        boost::json::object body{{"input_file_id", file_id}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "24h"}};
        for (auto& [k, v] : extra) body[k] = v;
        auto r = create(body);
        BOOST_REQUIRE_MESSAGE(r.status == 200, "create: " + std::to_string(r.status) + " " + r.body);
        return std::string(r.json().at("id").as_string());
    }

    http::response cancel(const std::string& batch_id) {
        return http.request("POST", "/v1/batches/" + batch_id + "/cancel", {{"Content-Type", "application/json"}});
    }

    boost::json::object get(const std::string& batch_id) {
        auto r = http.get("/v1/batches/" + batch_id);
        BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
        return r.json().as_object();
    }

    boost::json::object wait(const std::string& batch_id, std::set<std::string> statuses, std::chrono::seconds timeout = std::chrono::seconds(60)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto b = get(batch_id);
            if (statuses.count(std::string(b.at("status").as_string()))) return b;
            if (std::chrono::steady_clock::now() > deadline)
                BOOST_FAIL("batch " + batch_id + " stayed " + std::string(b.at("status").as_string()));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    std::string content(const boost::json::value& file_id) {
        if (file_id.is_null()) return {};
        auto r = http.get("/v1/files/" + std::string(file_id.as_string()) + "/content");
        BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
        return r.body;
    }
};

}  // namespace aqt
