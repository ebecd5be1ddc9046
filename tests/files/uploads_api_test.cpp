// The Uploads API (plugins/files/uploads.hpp) through a real aqueductd over HTTP, once per content
// store and metadata database (built from this file with AQ_TEST_STORE and AQ_TEST_POSTGRES,
// support/store_under_test.hpp): exact status, envelope and bytes, and the database and the
// store checked directly for leftovers. Sizes stay small (a few MiB) so the suite runs on every
// store; the 300 MiB case is in tests/conformance/uploads.test.mjs.
#define BOOST_TEST_MODULE uploads_api
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/pattern.hpp"
#include "support/raw_connection.hpp"
#include "support/store_under_test.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
using aqt::http::response;

namespace {

constexpr std::size_t MiB = 1 << 20;

std::string jsonl(int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += R"({"custom_id": "r)" + std::to_string(i) +
               R"(", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}})" "\n";
    return out;
}

long long now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct uploads_gateway {
    aqt::store_under_test where;  // this run's (AQ_TEST_STORE, AQ_TEST_POSTGRES)
    std::unique_ptr<aqt::gateway> gw;
    std::unique_ptr<aqt::http::client> alice, bob;

    // `pause`: AQ_FILES_TEST_PAUSE (plugins/files/test_pause.hpp), to hold a request at a step.
    explicit uploads_gateway(json::object extra = {}, const std::string& pause = {}) {
        extra["enabled"] = true;
        if (!extra.contains("purposes")) extra["purposes"] = json::array{"batch", "user_data"};
        aqt::gateway_options options;
        options.config = json::object{{"plugins", json::object{{"files", where.files_config(std::move(extra))}}}};
        if (!pause.empty()) options.env["AQ_FILES_TEST_PAUSE"] = pause;
        gw = std::make_unique<aqt::gateway>(std::move(options));
        where.attach(*gw);
        BOOST_TEST_MESSAGE("uploads on " << where.label());
        alice = std::make_unique<aqt::http::client>(gw->port());
        alice->default_headers["Authorization"] = gw->bearer("alice");
        bob = std::make_unique<aqt::http::client>(gw->port());
        bob->default_headers["Authorization"] = gw->bearer("bob");
    }
    std::unique_ptr<aqt::http::client> client(const std::string& who) const {
        auto c = std::make_unique<aqt::http::client>(gw->port());
        c->default_headers["Authorization"] = gw->bearer(who);
        return c;
    }
    long long count(const std::string& sql) const { return std::stoll(aqt::sql_value(where.database(), sql)); }
    // Rows of files in any state (parts included), and what holds content in the store.
    long long rows() const { return where.rows(); }
    long long contents() const { return static_cast<long long>(where.content_objects()); }
    // Waits (at most 10 s) for the purge job to bring the files rows down to `n`.
    bool purged_to(long long n) const {
        for (int i = 0; i < 100; ++i) {
            if (rows() == n) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return rows() == n;
    }
};

json::object body_of(const response& r) {
    BOOST_TEST_REQUIRE(r.header("content-type") == "application/json", r.body);
    return json::parse(r.body).as_object();
}

void expect_error(const response& r, int status, const std::optional<std::string>& param,
                  const std::optional<std::string>& message = std::nullopt,
                  const std::optional<std::string>& code = std::nullopt) {
    BOOST_TEST(r.status == status, r.body);
    auto root = body_of(r);
    BOOST_TEST_REQUIRE(root.size() == 1u, r.body);
    auto& e = root.at("error").as_object();
    BOOST_TEST(e.size() == 4u);
    BOOST_TEST(e.at("type") == json::value(status == 409 ? "conflict_error" : "invalid_request_error"), r.body);
    BOOST_TEST(e.at("param") == (param ? json::value(*param) : json::value(nullptr)), r.body);
    BOOST_TEST(e.at("code") == (code ? json::value(*code) : json::value(nullptr)), r.body);
    if (message) BOOST_TEST(std::string(e.at("message").as_string()) == *message);
}

response create(aqt::http::client& c, const json::object& body) {
    return c.request("POST", "/v1/uploads", {{"Content-Type", "application/json"}}, json::serialize(body));
}

json::object upload_body(std::uint64_t bytes, const std::string& filename = "big.bin",
                         const std::string& purpose = "user_data") {
    return json::object{{"bytes", bytes}, {"filename", filename}, {"mime_type", "application/octet-stream"},
                        {"purpose", purpose}};
}

std::string create_id(aqt::http::client& c, std::uint64_t bytes, const std::string& filename = "big.bin",
                      const std::string& purpose = "user_data") {
    response r = create(c, upload_body(bytes, filename, purpose));
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    return std::string(body_of(r).at("id").as_string());
}

response add_part(aqt::http::client& c, const std::string& upload_id, const std::string& data) {
    aqt::multipart form;
    form.file("data", "blob", data);
    return c.request("POST", "/uploads/" + upload_id + "/parts", {{"Content-Type", form.content_type()}}, form.body());
}

std::string part_id(aqt::http::client& c, const std::string& upload_id, const std::string& data) {
    response r = add_part(c, upload_id, data);
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    return std::string(body_of(r).at("id").as_string());
}

response complete(aqt::http::client& c, const std::string& upload_id, const std::vector<std::string>& parts,
                  std::optional<std::string> md5 = std::nullopt) {
    json::array ids;
    for (const auto& p : parts) ids.emplace_back(p);
    json::object body{{"part_ids", ids}};
    if (md5) body["md5"] = *md5;
    return c.request("POST", "/v1/uploads/" + upload_id + "/complete", {{"Content-Type", "application/json"}},
                     json::serialize(body));
}

response cancel(aqt::http::client& c, const std::string& upload_id) {
    return c.request("POST", "/v1/uploads/" + upload_id + "/cancel");
}

std::string not_pending(const std::string& doing, const std::string& id, const std::string& status) {
    return "Cannot " + doing + " the Upload " + id + ": its status is '" + status + "'.";
}

}  // namespace

BOOST_AUTO_TEST_CASE(create_answers_the_upload_object) {
    uploads_gateway g;
    response r = create(*g.alice, upload_body(12345, "big.bin"));
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    auto o = body_of(r);
    std::set<std::string> keys;
    for (auto& kv : o) keys.insert(std::string(kv.key()));
    BOOST_TEST((keys == std::set<std::string>{"id", "object", "bytes", "created_at", "expires_at", "filename",
                                               "purpose", "status", "file"}));
    BOOST_TEST(std::string(o.at("id").as_string()).starts_with("upload_"));
    BOOST_TEST(o.at("object") == json::value("upload"));
    BOOST_TEST(o.at("bytes").as_int64() == 12345);
    BOOST_TEST(std::abs(o.at("created_at").as_int64() - now_seconds()) <= 5);
    BOOST_TEST(o.at("expires_at").as_int64() == o.at("created_at").as_int64() + 3600);
    BOOST_TEST(o.at("filename") == json::value("big.bin"));
    BOOST_TEST(o.at("purpose") == json::value("user_data"));
    BOOST_TEST(o.at("status") == json::value("pending"));
    BOOST_TEST(o.at("file").is_null());
    BOOST_TEST(g.count("select count(*) from uploads") == 1);
}

BOOST_AUTO_TEST_CASE(create_refuses_every_bad_field_and_stores_nothing) {
    uploads_gateway g(json::object{{"max_upload_bytes", 1000000}});
    struct bad_case {
        json::object body;
        std::string param, message;
    };
    auto with = [](const char* key, json::value v) {
        json::object b = upload_body(100);
        if (v.is_null()) b.erase(key);
        else b[key] = v;
        return b;
    };
    const std::vector<bad_case> cases = {
        {with("bytes", nullptr), "bytes", "Missing required parameter: 'bytes'."},
        {with("bytes", "100"), "bytes", "Invalid type for 'bytes': expected an integer."},
        {with("bytes", 1.5), "bytes", "Invalid type for 'bytes': expected an integer."},
        {with("bytes", 0), "bytes", "Invalid 'bytes': must be a positive integer."},
        {with("bytes", -5), "bytes", "Invalid 'bytes': must be a positive integer."},
        {with("bytes", 1000001), "bytes", "Invalid 'bytes': an Upload may have at most 1000000 bytes."},
        {with("filename", nullptr), "filename", "Missing required parameter: 'filename'."},
        {with("filename", 7), "filename", "Invalid type for 'filename': expected a string."},
        {with("filename", "a/b"), "filename", "The filename must not contain path separators."},
        {with("filename", ""), "filename", "The filename must not be empty."},
        {with("mime_type", nullptr), "mime_type", "Missing required parameter: 'mime_type'."},
        {with("mime_type", "nonsense"), "mime_type", "Invalid 'mime_type': expected a MIME type such as 'text/jsonl'."},
        {with("purpose", nullptr), "purpose", "Missing required parameter: 'purpose'."},
        {with("purpose", "batch_output"), "purpose",
         "Invalid value for 'purpose': 'batch_output'. Supported values are: 'batch', 'user_data'."},
        {with("purpose", "fine-tune"), "purpose",
         "Invalid value for 'purpose': 'fine-tune'. Supported values are: 'batch', 'user_data'."},
        {with("purpose", "batch"), "filename", "Invalid file format for Batch API. Must be .jsonl"},
        {with("expires_after", json::object{{"anchor", "now"}, {"seconds", 7200}}), "expires_after.anchor",
         "Invalid 'expires_after.anchor': only 'created_at' is supported."},
        {with("expires_after", json::object{{"anchor", "created_at"}, {"seconds", 60}}), "expires_after.seconds",
         "Invalid 'expires_after.seconds': must be an integer between 3600 and 2592000."},
        {with("expires_after", "soon"), "expires_after", "Invalid type for 'expires_after': expected an object."},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(json::serialize(c.body)) { expect_error(create(*g.alice, c.body), 400, c.param, c.message); }
    }
    expect_error(g.alice->request("POST", "/v1/uploads", {{"Content-Type", "application/json"}}, "{nope"), 400,
                 std::nullopt);
    expect_error(g.alice->request("POST", "/v1/uploads", {{"Content-Type", "application/json"}}, "[1]"), 400,
                 std::nullopt, "The request body must be a JSON object.");
    BOOST_TEST(g.count("select count(*) from uploads") == 0);
    // The server keeps serving.
    BOOST_TEST(create(*g.alice, upload_body(100)).status == 200);
}

BOOST_AUTO_TEST_CASE(parts_in_parallel_and_out_of_order_complete_into_a_byte_exact_file) {
    uploads_gateway g(json::object{{"expiry_interval_seconds", 1}});
    // Sizes that cross the database store's 1 MiB chunks: aligned parts are joined inside the
    // store, a part ending mid-chunk (not the last) makes the rest stream.
    const std::string content = aqt::pattern_bytes(5 * MiB + 12345);
    const std::vector<std::string> pieces = {content.substr(0, 2 * MiB), content.substr(2 * MiB, 2 * MiB),
                                             content.substr(4 * MiB, MiB / 2), content.substr(4 * MiB + MiB / 2)};
    const std::string upload_id = create_id(*g.alice, content.size());
    std::vector<std::string> ids(pieces.size());
    std::vector<std::thread> senders;
    for (std::size_t i : {3u, 1u, 0u, 2u}) {
        senders.emplace_back([&, i] {
            auto c = g.client("alice");
            response r = add_part(*c, upload_id, pieces[i]);
            if (r.status == 200) ids[i] = std::string(json::parse(r.body).at("id").as_string());
        });
    }
    for (auto& t : senders) t.join();
    for (const auto& id : ids) BOOST_TEST_REQUIRE(id.starts_with("part_"));
    BOOST_TEST(g.count("select count(*) from files where state = 'part'") == 4);

    response done = complete(*g.alice, upload_id, ids, aqt::md5_hex(content));
    BOOST_TEST_REQUIRE(done.status == 200, done.body);
    auto o = body_of(done);
    BOOST_TEST(o.at("status") == json::value("completed"));
    BOOST_TEST(o.at("id") == json::value(upload_id));
    auto& file = o.at("file").as_object();
    const std::string file_id(file.at("id").as_string());
    BOOST_TEST(file.at("object") == json::value("file"));
    BOOST_TEST(file.at("bytes").as_int64() == static_cast<std::int64_t>(content.size()));
    BOOST_TEST(file.at("filename") == json::value("big.bin"));
    BOOST_TEST(file.at("purpose") == json::value("user_data"));
    BOOST_TEST(file.at("expires_at").as_int64() == file.at("created_at").as_int64() + 7 * 24 * 3600);

    response got = g.alice->get("/v1/files/" + file_id);
    BOOST_TEST(got.status == 200);
    BOOST_TEST(body_of(got) == file);
    response dl = g.alice->get("/v1/files/" + file_id + "/content");
    BOOST_TEST(dl.status == 200);
    BOOST_TEST((dl.body == content));
    BOOST_TEST(dl.header("etag") == "\"" + aqt::sha256_hex(content) + "\"");

    // The parts go with the next purge; the file stays, whole.
    BOOST_TEST(g.purged_to(1));
    const long long expected = g.where.name() == "database" ? 6 : 1;  // 1 MiB chunks, or one object
    BOOST_TEST(g.contents() == expected);
    BOOST_TEST(g.alice->get("/v1/files/" + file_id + "/content").body == content);
}

BOOST_AUTO_TEST_CASE(a_batch_upload_is_validated_like_a_direct_one) {
    uploads_gateway g;
    const std::string good = jsonl(40);
    const std::string half = good.substr(0, good.size() / 2), rest = good.substr(good.size() / 2);
    const std::string id = create_id(*g.alice, good.size(), "in.jsonl", "batch");
    const std::string p1 = part_id(*g.alice, id, half), p2 = part_id(*g.alice, id, rest);
    // Joined in the wrong order the lines break: refused, nothing visible, the Upload still pending.
    expect_error(complete(*g.alice, id, {p2, p1}), 400, std::nullopt,
                 "Invalid JSON at line 1");
    BOOST_TEST(body_of(g.alice->get("/v1/files")).at("data").as_array().empty());
    BOOST_TEST(g.count("select count(*) from files where state <> 'part'") == 0);
    response ok = complete(*g.alice, id, {p1, p2});
    BOOST_TEST_REQUIRE(ok.status == 200, ok.body);
    const std::string file_id(body_of(ok).at("file").at("id").as_string());
    BOOST_TEST(g.alice->get("/v1/files/" + file_id + "/content").body == good);
}

BOOST_AUTO_TEST_CASE(every_bad_completion_is_refused_and_leaves_the_upload_pending) {
    uploads_gateway g;
    const std::string a = aqt::pattern_bytes(3000), b = aqt::pattern_bytes(2000);
    const std::string id = create_id(*g.alice, 5000);
    const std::string pa = part_id(*g.alice, id, a), pb = part_id(*g.alice, id, b);
    // bob's own part, of bob's own upload.
    const std::string bobs = create_id(*g.bob, 5000);
    const std::string pbob = part_id(*g.bob, bobs, b);
    // alice's part of another upload of hers.
    const std::string other = create_id(*g.alice, 5000);
    const std::string pother = part_id(*g.alice, other, b);

    expect_error(complete(*g.alice, id, {pa}), 400, "part_ids",
                 "The parts total 3000 bytes, but the Upload was created with 'bytes' 5000.");
    expect_error(complete(*g.alice, id, {pa, pb, pb}), 400, "part_ids", "Duplicate part id in 'part_ids': " + pb + ".");
    expect_error(complete(*g.alice, id, {}), 400, "part_ids", "'part_ids' must name at least one part.");
    expect_error(complete(*g.alice, id, {pa, "part_nope"}), 400, "part_ids", "No such Part object: part_nope.");
    expect_error(complete(*g.alice, id, {pa, "file-abc"}), 400, "part_ids", "No such Part object: file-abc.");
    expect_error(complete(*g.alice, id, {pa, pbob}), 400, "part_ids", "No such Part object: " + pbob + ".");
    expect_error(complete(*g.alice, id, {pa, pother}), 400, "part_ids", "No such Part object: " + pother + ".");
    expect_error(complete(*g.alice, id, {pa, pb}, aqt::md5_hex(b + a)), 400, "md5",
                 "The md5 checksum does not match the content of the parts.");
    expect_error(g.alice->request("POST", "/v1/uploads/" + id + "/complete", {{"Content-Type", "application/json"}},
                                  R"({"part_ids": "x"})"),
                 400, "part_ids", "Invalid type for 'part_ids': expected an array of strings.");
    expect_error(g.alice->request("POST", "/v1/uploads/" + id + "/complete", {{"Content-Type", "application/json"}},
                                  R"({"part_ids": [1]})"),
                 400, "part_ids", "Invalid type for 'part_ids': expected an array of strings.");
    expect_error(g.alice->request("POST", "/v1/uploads/" + id + "/complete", {{"Content-Type", "application/json"}},
                                  "{}"),
                 400, "part_ids", "Missing required parameter: 'part_ids'.");
    std::vector<std::string> too_many(10001, pa);
    expect_error(complete(*g.alice, id, too_many), 400, "part_ids", "Invalid 'part_ids': at most 10000 parts.");
    BOOST_TEST(g.count("select count(*) from files where state not in ('part')") == 0);

    // Still pending: it completes now, with the md5 in capitals.
    std::string upper = aqt::md5_hex(a + b);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    response ok = complete(*g.alice, id, {pa, pb}, upper);
    BOOST_TEST_REQUIRE(ok.status == 200, ok.body);
    // Completing twice, adding a part or cancelling afterwards.
    expect_error(complete(*g.alice, id, {pa, pb}), 400, std::nullopt, not_pending("complete", id, "completed"));
    expect_error(add_part(*g.alice, id, "x"), 400, std::nullopt, not_pending("add a part to", id, "completed"));
    expect_error(cancel(*g.alice, id), 400, std::nullopt, not_pending("cancel", id, "completed"));
}

BOOST_AUTO_TEST_CASE(another_owners_upload_is_not_found) {
    uploads_gateway g;
    const std::string id = create_id(*g.alice, 10);
    const std::string p = part_id(*g.alice, id, "0123456789");
    const std::string message = "No such Upload object: " + id;
    expect_error(add_part(*g.bob, id, "0123456789"), 404, "upload_id", message);
    expect_error(complete(*g.bob, id, {p}), 404, "upload_id", message);
    expect_error(cancel(*g.bob, id), 404, "upload_id", message);
    expect_error(cancel(*g.alice, "upload_unknown"), 404, "upload_id", "No such Upload object: upload_unknown");
    BOOST_TEST(g.count("select count(*) from files where state = 'part'") == 1);
    BOOST_TEST(complete(*g.alice, id, {p}).status == 200);  // untouched by bob
}

BOOST_AUTO_TEST_CASE(bad_parts_are_refused_and_store_nothing) {
    uploads_gateway g;
    const std::string id = create_id(*g.alice, 100);
    const long long contents = g.contents();
    // No `data`, an empty one, a second one, not multipart.
    aqt::multipart no_data;
    no_data.field("other", "x");
    expect_error(g.alice->request("POST", "/uploads/" + id + "/parts", {{"Content-Type", no_data.content_type()}},
                                  no_data.body()),
                 400, "data", "Missing required parameter: 'data'.");
    expect_error(add_part(*g.alice, id, ""), 400, "data", "The part is empty.");
    aqt::multipart twice;
    twice.file("data", "a", "aaa").file("data", "b", "bbb");
    expect_error(g.alice->request("POST", "/uploads/" + id + "/parts", {{"Content-Type", twice.content_type()}},
                                  twice.body()),
                 400, "data", "Duplicate parameter: 'data' may be sent only once.");
    expect_error(g.alice->request("POST", "/uploads/" + id + "/parts", {{"Content-Type", "application/json"}}, "{}"),
                 415, std::nullopt, std::nullopt, "unsupported_media_type");
    // More than the Upload's bytes in all.
    BOOST_TEST(add_part(*g.alice, id, std::string(60, 'a')).status == 200);
    expect_error(add_part(*g.alice, id, std::string(41, 'b')), 400, "data",
                 "The parts of the Upload would exceed its 'bytes' (100).");
    BOOST_TEST(g.count("select count(*) from files") == 1);

    // A part announced over 64 MiB is refused before its body is read.
    aqt::raw::connection raw(g.gw->port());
    BOOST_TEST_REQUIRE(raw.send("POST /v1/uploads/" + id + "/parts HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                                g.gw->bearer("alice") +
                                "\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 80000000\r\n\r\n"));
    auto r = raw.read_response(std::chrono::seconds(5));
    BOOST_TEST_REQUIRE(std::string(aqt::raw::to_string(r.how)) == "data");
    BOOST_TEST(r.data.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    BOOST_TEST(r.data.substr(r.data.find("\r\n\r\n") + 4) ==
               R"({"error":{"message":"Part is too large: the limit is 67108864 bytes.","type":"invalid_request_error","param":"data","code":null}})");
    BOOST_TEST(g.count("select count(*) from files") == 1);
    BOOST_TEST(g.contents() >= contents);
}

// The limit inside the body, on every store: the part is refused once its 64 MiB + 1st byte
// arrives, and what its store had written of it is gone before the answer.
BOOST_AUTO_TEST_CASE(a_part_of_64_mib_and_one_byte_is_refused_within_the_body) {
    uploads_gateway g;
    const std::string id = create_id(*g.alice, 100 * MiB);
    expect_error(add_part(*g.alice, id, std::string(64 * MiB + 1, 'x')), 400, "data",
                 "Part is too large: the limit is 67108864 bytes.");
    BOOST_TEST(g.rows() == 0);
    BOOST_TEST(g.contents() == 0);
    BOOST_TEST(add_part(*g.alice, id, std::string(64 * MiB, 'x')).status == 200);
}

BOOST_AUTO_TEST_CASE(cancel_ends_the_upload_and_the_purge_takes_its_parts) {
    uploads_gateway g(json::object{{"expiry_interval_seconds", 1}});
    const std::string id = create_id(*g.alice, 2 * MiB);
    const std::string p = part_id(*g.alice, id, aqt::pattern_bytes(MiB + 17));
    response r = cancel(*g.alice, id);
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    auto o = body_of(r);
    BOOST_TEST(o.at("status") == json::value("cancelled"));
    BOOST_TEST(o.at("file").is_null());
    expect_error(add_part(*g.alice, id, "x"), 400, std::nullopt, not_pending("add a part to", id, "cancelled"));
    expect_error(complete(*g.alice, id, {p}), 400, std::nullopt, not_pending("complete", id, "cancelled"));
    expect_error(cancel(*g.alice, id), 400, std::nullopt, not_pending("cancel", id, "cancelled"));
    BOOST_TEST(g.purged_to(0));
    BOOST_TEST(g.contents() == 0);
}

BOOST_AUTO_TEST_CASE(an_expired_upload_refuses_parts_and_completion) {
    // Times are whole seconds: an Upload created at t + 0.99 with an expiry of N seconds has
    // expired at t + N, so the part has N - 1 seconds at least to arrive (with N = 1 a CI run
    // saw it refused as expired). It has 2; the Upload has surely expired 4.1 s after creation.
    uploads_gateway g(json::object{{"upload_expiry_seconds", 3}, {"expiry_interval_seconds", 1}});
    const std::string id = create_id(*g.alice, 10);
    const std::string p = part_id(*g.alice, id, "0123456789");
    std::this_thread::sleep_for(std::chrono::milliseconds(4100));
    expect_error(complete(*g.alice, id, {p}), 400, std::nullopt, not_pending("complete", id, "expired"));
    expect_error(add_part(*g.alice, id, "x"), 400, std::nullopt, not_pending("add a part to", id, "expired"));
    expect_error(cancel(*g.alice, id), 400, std::nullopt, not_pending("cancel", id, "expired"));
    BOOST_TEST(g.purged_to(0));
    BOOST_TEST(g.contents() == 0);
    BOOST_TEST(g.count("select count(*) from uploads") == 1);  // kept a day, answering "expired"
    // A day later (moved back in the database) the purge deletes the row: then it is unknown.
    aqt::sql_exec(g.where.database(), "update uploads set expires_at = expires_at - 86401");
    for (int i = 0; i < 100 && g.count("select count(*) from uploads") > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    BOOST_TEST(g.count("select count(*) from uploads") == 0);
    expect_error(complete(*g.alice, id, {p}), 404, "upload_id", "No such Upload object: " + id);
}

BOOST_AUTO_TEST_CASE(the_quota_applies_to_uploads_parts_and_completion) {
    uploads_gateway g(json::object{{"quota_bytes", 1000}, {"quota_files", 1}});
    expect_error(create(*g.alice, upload_body(1001)), 413, "bytes",
                 "Storage quota exceeded: at most 1000 bytes may be stored.", "quota_exceeded");
    const std::string first = create_id(*g.alice, 400), second = create_id(*g.alice, 400);
    const std::string p1 = part_id(*g.alice, first, std::string(400, 'a'));
    const std::string p2 = part_id(*g.alice, second, std::string(400, 'b'));
    BOOST_TEST(complete(*g.alice, first, {p1}).status == 200);
    // One file allowed: the second completion is refused, and stays possible.
    expect_error(complete(*g.alice, second, {p2}), 413, std::nullopt,
                 "Storage quota exceeded: at most 1 files may be stored.", "quota_exceeded");
    BOOST_TEST(g.count("select count(*) from files where state = 'ready'") == 1);
    const std::string file_id(body_of(g.alice->get("/v1/files")).at("data").at(0).at("id").as_string());
    BOOST_TEST(g.alice->request("DELETE", "/v1/files/" + file_id).status == 200);
    BOOST_TEST(complete(*g.alice, second, {p2}).status == 200);

    // Parts count toward quota_bytes: 400 stored, 300 of parts fit, 400 more do not.
    const std::string third = create_id(*g.alice, 900);
    BOOST_TEST(add_part(*g.alice, third, std::string(300, 'c')).status == 200);
    expect_error(add_part(*g.alice, third, std::string(400, 'd')), 413, "data",
                 "Storage quota exceeded: at most 1000 bytes may be stored.", "quota_exceeded");
    BOOST_TEST(g.count("select count(*) from files where state = 'part' and filename = '" + third + "'") == 1);
}

BOOST_AUTO_TEST_CASE(while_one_request_completes_the_others_get_409) {
    // The first completion stops for 6 s right after claiming the Upload (a test pause, never
    // timing): a second completion, a part and a cancel meanwhile are 409, then it finishes.
    uploads_gateway g({}, "upload_claimed:6000");
    const std::string id = create_id(*g.alice, 10);
    const std::string p = part_id(*g.alice, id, "0123456789");
    response first;
    std::thread completing([&] {
        auto c = g.client("alice");
        first = complete(*c, id, {p});
    });
    BOOST_TEST_REQUIRE(g.gw->wait_for_log("files: test pause at upload_claimed"));
    const std::string busy = "The Upload " + id + " is being completed by another request.";
    expect_error(complete(*g.alice, id, {p}), 409, std::nullopt, busy, "conflict");
    expect_error(add_part(*g.alice, id, "x"), 409, std::nullopt, busy, "conflict");
    expect_error(cancel(*g.alice, id), 409, std::nullopt, busy, "conflict");
    completing.join();
    BOOST_TEST_REQUIRE(first.status == 200, first.body);
    BOOST_TEST(body_of(first).at("status") == json::value("completed"));
    BOOST_TEST(g.count("select count(*) from files where state = 'ready'") == 1);
}

BOOST_AUTO_TEST_CASE(a_gateway_killed_mid_completion_leaves_nothing_and_the_claim_lapses) {
    // Killed while its completion holds the Upload (paused 4 s after the claim); after the
    // restart nothing is visible, and once the claim's lease (orphan_grace_seconds) has run out
    // the Upload completes (pausing once more on its way).
    uploads_gateway g(json::object{{"orphan_grace_seconds", 2}, {"expiry_interval_seconds", 1}},
                      "upload_claimed:4000");
    const std::string content = aqt::pattern_bytes(2 * MiB + 5);
    const std::string id = create_id(*g.alice, content.size());
    const std::string p = part_id(*g.alice, id, content);
    std::thread completing([&] {
        auto c = g.client("alice");
        try {
            (void)complete(*c, id, {p});
        } catch (const std::exception&) {
            // cut off by the kill
        }
    });
    BOOST_TEST_REQUIRE(g.gw->wait_for_log("files: test pause at upload_claimed"));
    g.gw->kill9();
    completing.join();
    g.gw->restart();
    g.alice = g.client("alice");
    BOOST_TEST(body_of(g.alice->get("/v1/files")).at("data").as_array().empty());
    BOOST_TEST(g.count("select count(*) from files where state = 'ready'") == 0);
    BOOST_TEST(g.count("select count(*) from uploads where status = 'completing'") == 1);
    const long long lapse = g.count("select claimed_until from uploads");
    while (now_seconds() <= lapse) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    response done = complete(*g.alice, id, {p});
    BOOST_TEST_REQUIRE(done.status == 200, done.body);
    const std::string file_id(body_of(done).at("file").at("id").as_string());
    BOOST_TEST((g.alice->get("/v1/files/" + file_id + "/content").body == content));
}
