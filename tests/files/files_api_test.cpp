// The Files API through a real aqueductd over HTTP, once per content store and metadata database
// (built from this file with AQ_TEST_STORE and AQ_TEST_POSTGRES, support/store_under_test.hpp):
// exact status, exact envelope, exact bytes, and the database and the store checked directly
// for leftovers.
#define BOOST_TEST_MODULE files_api
#include <boost/test/unit_test.hpp>

#include "rule_cases.hpp"

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/pattern.hpp"
#include "support/postgres.hpp"
#include "support/raw_connection.hpp"
#include "support/store_under_test.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <tuple>

namespace json = boost::json;
using aqt::http::response;

namespace {

std::string line(const std::string& id) {
    return R"({"custom_id": ")" + id +
           R"(", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}})";
}

std::string jsonl(int n, const std::string& prefix = "r") {
    std::string out;
    for (int i = 0; i < n; ++i) out += line(prefix + std::to_string(i)) + "\n";
    return out;
}

std::string binary_content(std::size_t n) { return aqt::pattern_bytes(n); }

std::string db_value(const std::string& database, const std::string& sql) { return aqt::sql_value(database, sql); }
void db_exec(const std::string& database, const std::string& sql) { aqt::sql_exec(database, sql); }

// A gateway with the files plugin on the store and database under test.
struct files_gateway {
    aqt::store_under_test where;  // this run's (AQ_TEST_STORE, AQ_TEST_POSTGRES)
    std::string database;
    std::unique_ptr<aqt::gateway> gw;
    std::unique_ptr<aqt::http::client> alice, bob;

    explicit files_gateway(json::object extra = {}) {
        extra["enabled"] = true;
        if (!extra.contains("purposes")) extra["purposes"] = json::array{"batch", "user_data"};
        gw = std::make_unique<aqt::gateway>(
            json::object{{"plugins", json::object{{"files", where.files_config(std::move(extra))}}}});
        where.attach(*gw);
        database = where.database();
        BOOST_TEST_MESSAGE("files on " << where.label());
        alice = std::make_unique<aqt::http::client>(gw->port());
        alice->default_headers["Authorization"] = gw->bearer("alice");
        bob = std::make_unique<aqt::http::client>(gw->port());
        bob->default_headers["Authorization"] = gw->bearer("bob");
    }

    // A count straight from the database, bypassing the plugin.
    long long count(const std::string& sql) const { return std::stoll(db_value(database, sql)); }
    // Rows of files, in any state.
    long long stored_files() const { return where.rows(); }
    // What holds content in the store: files, objects, or chunk rows.
    long long stored_contents() const { return static_cast<long long>(where.content_objects()); }
    // An abandoned upload is undone in two steps, its content and then its row (store.cpp's
    // drop_content): waits up to 5 s for both, so that neither is asserted between the two.
    void wait_for_rollback() const {
        for (int i = 0; i < 50 && (stored_contents() > 0 || stored_files() > 0); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
};

response upload(aqt::http::client& c, const std::string& filename, const std::string& content,
                const std::string& purpose = "batch", bool file_first = false) {
    aqt::multipart form;
    if (file_first) {
        form.file("file", filename, content).field("purpose", purpose);
    } else {
        form.field("purpose", purpose).file("file", filename, content);
    }
    return c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
}

response upload_raw(aqt::http::client& c, const std::string& boundary, const std::string& body) {
    return c.request("POST", "/v1/files", {{"Content-Type", "multipart/form-data; boundary=" + boundary}}, body);
}

json::object body_of(const response& r) {
    BOOST_TEST_REQUIRE(r.header("content-type") == "application/json", r.body);
    return json::parse(r.body).as_object();
}

// Exactly the OpenAI error envelope with this status, type invalid_request_error, param, code.
void expect_error(const response& r, int status, const std::optional<std::string>& param,
                  const std::optional<std::string>& message = std::nullopt,
                  const std::optional<std::string>& code = std::nullopt) {
    BOOST_TEST(r.status == status, r.body);
    BOOST_TEST(!r.header("x-request-id").empty());
    auto root = body_of(r);
    BOOST_TEST_REQUIRE(root.size() == 1u, r.body);
    auto& e = root.at("error").as_object();
    BOOST_TEST(e.size() == 4u);
    BOOST_TEST(e.at("type") == json::value("invalid_request_error"));
    BOOST_TEST(e.at("param") == (param ? json::value(*param) : json::value(nullptr)), r.body);
    BOOST_TEST(e.at("code") == (code ? json::value(*code) : json::value(nullptr)), r.body);
    BOOST_TEST(!e.at("message").as_string().empty());
    if (message) BOOST_TEST(std::string(e.at("message").as_string()) == *message);
}

void expect_not_found(const response& r, const std::string& id) {
    expect_error(r, 404, "id", "No such File object: " + id);
}

// The FileObject's exact key set and values.
void expect_file_object(const json::object& o, const std::string& filename, std::uint64_t bytes,
                        const std::string& purpose, std::int64_t lifetime = 604800) {
    std::set<std::string> keys;
    for (auto& kv : o) keys.insert(std::string(kv.key()));
    BOOST_TEST((keys == std::set<std::string>{"id", "object", "bytes", "created_at", "expires_at", "filename",
                                               "purpose", "status", "status_details"}));
    std::string id(o.at("id").as_string());
    BOOST_TEST(id.size() == 5u + 24u);
    BOOST_TEST(id.starts_with("file-"));
    BOOST_TEST(o.at("object") == json::value("file"));
    BOOST_TEST(o.at("bytes").to_number<std::uint64_t>() == bytes);
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto created = o.at("created_at").as_int64();
    BOOST_TEST(std::abs(created - now) <= 5);
    BOOST_TEST(o.at("expires_at").as_int64() == created + lifetime);
    BOOST_TEST(o.at("filename") == json::value(filename));
    BOOST_TEST(o.at("purpose") == json::value(purpose));
    BOOST_TEST(o.at("status") == json::value("processed"));
    BOOST_TEST(o.at("status_details").is_null());
}

std::string id_of(const response& r) { return std::string(body_of(r).at("id").as_string()); }

}  // namespace

// ---- upload, retrieve, download, delete ------------------------------------------------------

BOOST_AUTO_TEST_CASE(upload_retrieve_download_delete_round_trip) {
    files_gateway g;
    std::string content = jsonl(3);
    response up = upload(*g.alice, "input.jsonl", content);
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    auto obj = body_of(up);
    expect_file_object(obj, "input.jsonl", content.size(), "batch");
    std::string id(obj.at("id").as_string());

    for (const char* prefix : {"/files/", "/v1/files/"}) {
        response got = g.alice->get(prefix + id);
        BOOST_TEST(got.status == 200);
        BOOST_TEST(body_of(got) == obj);
    }

    response dl = g.alice->get("/v1/files/" + id + "/content", {{"Accept", "application/binary"}});
    BOOST_TEST(dl.status == 200);
    BOOST_TEST(dl.body == content);
    BOOST_TEST(dl.header("content-type") == "application/octet-stream");
    BOOST_TEST(dl.header("content-length") == std::to_string(content.size()));
    BOOST_TEST(dl.header("content-disposition") == "attachment; filename=\"input.jsonl\"; filename*=UTF-8''input.jsonl");
    BOOST_TEST(dl.header("etag") == "\"" + aqt::sha256_hex(content) + "\"");
    BOOST_TEST(dl.header("accept-ranges") == "bytes");

    response del = g.alice->request("DELETE", "/files/" + id, {{"Content-Type", "application/json"}});
    BOOST_TEST(del.status == 200);
    BOOST_TEST(body_of(del) == (json::object{{"id", id}, {"object", "file"}, {"deleted", true}}));
    expect_not_found(g.alice->get("/files/" + id), id);
    expect_not_found(g.alice->get("/files/" + id + "/content"), id);
    expect_not_found(g.alice->request("DELETE", "/files/" + id), id);
    BOOST_TEST(g.stored_files() == 0);
    BOOST_TEST(g.stored_contents() == 0);
}

BOOST_AUTO_TEST_CASE(upload_accepts_file_before_purpose_and_expires_after) {
    files_gateway g;
    aqt::multipart form;
    form.file("file", "first.jsonl", jsonl(2))
        .field("x-unknown-field", "ignored")
        .field("purpose", "batch")
        .field("expires_after[anchor]", "created_at")
        .field("expires_after[seconds]", "7200");
    response r = g.alice->request("POST", "/files", {{"Content-Type", form.content_type()}}, form.body());
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    expect_file_object(body_of(r), "first.jsonl", jsonl(2).size(), "batch", 7200);
}

BOOST_AUTO_TEST_CASE(binary_multi_chunk_content_is_byte_exact_and_chunked_upload_works) {
    files_gateway g;
    std::string content = binary_content(3 * 1024 * 1024 + 12345);  // 4 chunks, the last partial
    aqt::multipart form;
    form.field("purpose", "user_data").file("file", "blob.bin", content);
    aqt::http::request req;
    req.method = "POST";
    req.target = "/v1/files";
    req.headers = {{"Content-Type", form.content_type()}};
    req.body = form.body();
    req.chunked = true;  // like the Node SDK: no Content-Length
    response up = g.alice->send(req);
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    std::string id = id_of(up);
    BOOST_TEST(g.stored_contents() == (g.where.name() == "database" ? 4 : 1));  // 4 chunks, the last partial

    response dl = g.alice->get("/files/" + id + "/content");
    BOOST_TEST(dl.status == 200);
    BOOST_TEST(dl.body.size() == content.size());
    BOOST_TEST((dl.body == content));
    BOOST_TEST(dl.header("etag") == "\"" + aqt::sha256_hex(content) + "\"");
}

BOOST_AUTO_TEST_CASE(range_requests_answer_206_and_416) {
    files_gateway g;
    std::string content = binary_content(2 * 1024 * 1024 + 100);
    response up = upload(*g.alice, "blob.bin", content, "user_data");
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    std::string id = id_of(up), url = "/files/" + id + "/content", size = std::to_string(content.size());

    struct case_t {
        std::string range;
        std::size_t first, last;
    };
    std::size_t mib = 1024 * 1024;
    for (const case_t& c : {case_t{"bytes=0-9", 0, 9}, case_t{"bytes=" + std::to_string(mib - 5) + "-" + std::to_string(mib + 4), mib - 5, mib + 4},
                            case_t{"bytes=" + std::to_string(2 * mib) + "-", 2 * mib, content.size() - 1},
                            case_t{"bytes=-7", content.size() - 7, content.size() - 1},
                            case_t{"bytes=10-99999999999", 10, content.size() - 1}}) {
        response r = g.alice->get(url, {{"Range", c.range}});
        BOOST_TEST_CONTEXT(c.range) {
            BOOST_TEST(r.status == 206);
            BOOST_TEST(r.header("content-range") ==
                       "bytes " + std::to_string(c.first) + "-" + std::to_string(c.last) + "/" + size);
            BOOST_TEST(r.header("content-length") == std::to_string(c.last - c.first + 1));
            BOOST_TEST((r.body == content.substr(c.first, c.last - c.first + 1)));
        }
    }
    response unsat = g.alice->get(url, {{"Range", "bytes=" + size + "-"}});
    expect_error(unsat, 416, "range");
    BOOST_TEST(unsat.header("content-range") == "bytes */" + size);

    // Several ranges, or an If-Range naming another version: the whole file.
    response multi = g.alice->get(url, {{"Range", "bytes=0-1,5-6"}});
    BOOST_TEST(multi.status == 200);
    BOOST_TEST(multi.body.size() == content.size());
    response stale = g.alice->get(url, {{"Range", "bytes=0-1"}, {"If-Range", "\"other\""}});
    BOOST_TEST(stale.status == 200);
    response fresh = g.alice->get(url, {{"Range", "bytes=0-1"}, {"If-Range", "\"" + aqt::sha256_hex(content) + "\""}});
    BOOST_TEST(fresh.status == 206);
}

BOOST_AUTO_TEST_CASE(utf8_filename_is_encoded_safely_in_content_disposition) {
    files_gateway g;
    std::string name = "na\xc3\xafve r\xc3\xa9sum\xc3\xa9;x.jsonl";
    response up = upload(*g.alice, name, jsonl(1));
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    BOOST_TEST(body_of(up).at("filename") == json::value(name));
    response dl = g.alice->get("/files/" + id_of(up) + "/content");
    BOOST_TEST(dl.header("content-disposition") ==
               "attachment; filename=\"na_ve r_sum_;x.jsonl\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9%3Bx.jsonl");
}

// ---- batch validation: the shared rule table, as the upload answers it -----------------------

BOOST_AUTO_TEST_CASE(upload_answers_the_batch_rule_table) {
    using aqt::batch_rules::rule_case_limits;
    files_gateway g(json::object{{"max_line_bytes", rule_case_limits::max_line_bytes},
                                 {"max_requests_per_file", rule_case_limits::max_requests}});
    long long accepted = 0;
    for (const auto& c : aqt::batch_rules::rule_cases()) {
        for (bool file_first : {false, true}) {
            BOOST_TEST_CONTEXT(c.name << (file_first ? ", file before purpose" : "")) {
                response r = upload(*g.alice, "in.jsonl", c.input, "batch", file_first);
                if (c.upload.accepted()) {
                    BOOST_TEST(r.status == 200, r.body);
                    ++accepted;
                } else {
                    std::string message = c.upload.message;
                    if (c.upload.line) message += " at line " + std::to_string(c.upload.line);
                    expect_error(r, 400, "file", message);
                }
            }
        }
    }
    BOOST_TEST(g.stored_files() == accepted);
    BOOST_TEST(g.stored_contents() == accepted);
}

// ---- list ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(list_paginates_with_after_in_both_orders) {
    files_gateway g;
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        response r = upload(*g.alice, "f" + std::to_string(i) + ".jsonl", jsonl(1), "batch");
        BOOST_TEST_REQUIRE(r.status == 200, r.body);
        ids.push_back(id_of(r));
    }
    response other = upload(*g.alice, "u.bin", "x", "user_data");
    BOOST_TEST_REQUIRE(other.status == 200);

    for (bool asc : {true, false}) {
        std::vector<std::string> seen;
        std::string after;
        for (int page = 0; page < 10; ++page) {
            std::string q = "/v1/files?purpose=batch&limit=2&order=" + std::string(asc ? "asc" : "desc");
            if (!after.empty()) q += "&after=" + after;
            response r = g.alice->get(q);
            BOOST_TEST_REQUIRE(r.status == 200, r.body);
            auto o = body_of(r);
            BOOST_TEST(o.at("object") == json::value("list"));
            auto& data = o.at("data").as_array();
            BOOST_TEST_REQUIRE(!data.empty());
            for (auto& f : data) seen.emplace_back(f.at("id").as_string());
            BOOST_TEST(o.at("first_id") == data.front().at("id"));
            BOOST_TEST(o.at("last_id") == data.back().at("id"));
            after = std::string(o.at("last_id").as_string());
            if (!o.at("has_more").as_bool()) break;
        }
        BOOST_TEST_REQUIRE(seen.size() == 5u);
        // created_at then id: same-second uploads are ordered by id, so compare as a set and
        // check the order is strictly monotonic in (created_at, id).
        BOOST_TEST((std::set<std::string>(seen.begin(), seen.end()) == std::set<std::string>(ids.begin(), ids.end())));
    }
    response all = g.alice->get("/files");
    auto o = body_of(all);
    BOOST_TEST(o.at("data").as_array().size() == 6u);
    BOOST_TEST(o.at("has_more") == json::value(false));
    // Default order is desc by created_at: the first is not older than the last.
    auto& d = o.at("data").as_array();
    BOOST_TEST(d.front().at("created_at").as_int64() >= d.back().at("created_at").as_int64());

    response empty = g.bob->get("/files");
    BOOST_TEST(body_of(empty) == (json::object{{"object", "list"}, {"data", json::array{}}, {"first_id", nullptr},
                                               {"last_id", nullptr}, {"has_more", false}}));
}

BOOST_AUTO_TEST_CASE(list_rejects_bad_parameters) {
    files_gateway g;
    expect_error(g.alice->get("/files?limit=0"), 400, "limit");
    expect_error(g.alice->get("/files?limit=100000"), 400, "limit");
    expect_error(g.alice->get("/files?limit=ten"), 400, "limit");
    expect_error(g.alice->get("/files?order=sideways"), 400, "order");
    expect_error(g.alice->get("/files?after=file-doesnotexist000000000000"), 400, "after");
    BOOST_TEST(g.alice->get("/files?limit=10000").status == 200);
    BOOST_TEST(g.alice->get("/files?limit=1").status == 200);
}

// ---- ownership and expiry --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(another_owners_file_is_exactly_not_found) {
    files_gateway g;
    response up = upload(*g.alice, "mine.jsonl", jsonl(1));
    BOOST_TEST_REQUIRE(up.status == 200);
    std::string id = id_of(up);
    response missing = g.bob->get("/files/file-000000000000000000000000");
    response foreign = g.bob->get("/files/" + id);
    expect_not_found(foreign, id);
    BOOST_TEST(missing.status == foreign.status);
    expect_not_found(g.bob->get("/files/" + id + "/content"), id);
    expect_not_found(g.bob->request("DELETE", "/files/" + id), id);
    expect_error(g.bob->get("/files?after=" + id), 400, "after");
    BOOST_TEST(body_of(g.bob->get("/files")).at("data").as_array().empty());
    BOOST_TEST(g.alice->get("/files/" + id).status == 200);  // still there
}

BOOST_AUTO_TEST_CASE(expired_files_vanish_at_once_and_are_purged) {
    files_gateway g(json::object{{"default_expiry_seconds", 1}, {"expiry_interval_seconds", 1}});
    response up = upload(*g.alice, "short.jsonl", jsonl(1));
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    std::string id = id_of(up);
    BOOST_TEST(body_of(up).at("expires_at").as_int64() == body_of(up).at("created_at").as_int64() + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    expect_not_found(g.alice->get("/files/" + id), id);
    expect_not_found(g.alice->get("/files/" + id + "/content"), id);
    BOOST_TEST(body_of(g.alice->get("/files")).at("data").as_array().empty());
    // The purge job reclaims the rows within a few intervals.
    for (int i = 0; i < 50 && g.stored_files() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    BOOST_TEST(g.stored_files() == 0);
    BOOST_TEST(g.stored_contents() == 0);
}

// ---- bad input: a clear 4xx, nothing stored, the server keeps serving ------------------------

BOOST_AUTO_TEST_CASE(bad_uploads_are_refused_and_store_nothing) {
    files_gateway g(json::object{{"max_file_bytes", 4096}});
    auto& c = *g.alice;
    const std::string b = "XyZboundary";
    const std::string disp = "Content-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n";
    const std::string purpose = "--" + b + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n";

    expect_error(c.request("POST", "/files", {{"Content-Type", "application/json"}}, "{}"), 415, std::nullopt,
                 std::nullopt, "unsupported_media_type");
    expect_error(c.request("POST", "/files", {{"Content-Type", "multipart/form-data"}}, "x"), 415, std::nullopt,
                 std::nullopt, "unsupported_media_type");

    // Missing parts.
    expect_error(upload_raw(c, b, purpose + "--" + b + "--\r\n"), 400, "file", "Missing required parameter: 'file'.");
    expect_error(upload_raw(c, b, "--" + b + "\r\n" + disp + jsonl(1) + "\r\n--" + b + "--\r\n"), 400, "purpose",
                 "Missing required parameter: 'purpose'.");
    // Purposes.
    expect_error(upload(c, "a.jsonl", jsonl(1), "assistants"), 400, "purpose");
    expect_error(upload(c, "a.jsonl", jsonl(1), "batch_output"), 400, "purpose");
    expect_error(upload(c, "a.jsonl", jsonl(1), "batch_output", true), 400, "purpose");
    // Batch content and name.
    expect_error(upload(c, "a.txt", jsonl(1)), 400, "file", "Invalid file format for Batch API. Must be .jsonl");
    expect_error(upload(c, "a.jsonl", line("a") + "\n{oops\n"), 400, "file", "Invalid JSON at line 2");
    expect_error(upload(c, "a.jsonl", line("a") + "\n" + line("b") + "\n" + line("a")), 400, "file",
                 "Duplicate custom_id at line 3");
    expect_error(upload(c, "a.jsonl", line("a") + "\n" + line("b\xff") + "\n"), 400, "file", "Invalid UTF-8 at line 2");
    expect_error(upload(c, "a.jsonl", line("a") + "\n{oops\n", "batch", true), 400, "file", "Invalid JSON at line 2");
    expect_error(upload(c, "a.jsonl", ""), 400, "file", "File is empty.");
    expect_error(upload(c, "a.bin", "", "user_data"), 400, "file", "File is empty.");
    // Size.
    expect_error(upload(c, "a.bin", std::string(4097, 'x'), "user_data"), 400, "file",
                 "File is too large: the limit is 4096 bytes.");
    BOOST_TEST(upload(c, "a.bin", std::string(4096, 'x'), "user_data").status == 200);
    // Filenames.
    for (const std::string& name : std::vector<std::string>{"a/b.jsonl", "a\\\\b.jsonl", "..\\\\x.jsonl",
                                                            "a\\\"b.jsonl", "a\x01" "b.jsonl",
                                                            std::string(250, 'n') + ".jsonl"}) {
        BOOST_TEST_CONTEXT(name) {
            std::string body = purpose + "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
                               name + "\"\r\n\r\n" + jsonl(1) + "\r\n--" + b + "--\r\n";
            expect_error(upload_raw(c, b, body), 400, "file");
        }
    }
    // Framing.
    std::string two_files = purpose + "--" + b + "\r\n" + disp + jsonl(1) + "\r\n--" + b + "\r\n" + disp + jsonl(1) +
                            "\r\n--" + b + "--\r\n";
    expect_error(upload_raw(c, b, two_files), 400, "file", "Duplicate parameter: 'file' may be sent only once.");
    std::string truncated = purpose + "--" + b + "\r\n" + disp + jsonl(2).substr(0, 50);
    expect_error(upload_raw(c, b, truncated), 400, std::nullopt,
                 "The multipart body is truncated: its closing boundary is missing.");
    std::string no_close = purpose + "--" + b + "\r\n" + disp + jsonl(1) + "\r\n";
    expect_error(upload_raw(c, b, no_close), 400, std::nullopt,
                 "The multipart body is truncated: its closing boundary is missing.");
    std::string huge_headers = purpose + "--" + b + "\r\nX-Pad: " + std::string(40000, 'p') + "\r\n" + disp +
                               jsonl(1) + "\r\n--" + b + "--\r\n";
    expect_error(upload_raw(c, b, huge_headers), 400, std::nullopt, "Multipart part headers are too large.");
    // expires_after.
    auto with_expiry = [&](const std::string& anchor, const std::string& seconds) {
        std::string body = purpose;
        if (!anchor.empty())
            body += "--" + b + "\r\nContent-Disposition: form-data; name=\"expires_after[anchor]\"\r\n\r\n" + anchor + "\r\n";
        if (!seconds.empty())
            body += "--" + b + "\r\nContent-Disposition: form-data; name=\"expires_after[seconds]\"\r\n\r\n" + seconds + "\r\n";
        body += "--" + b + "\r\n" + disp + jsonl(1) + "\r\n--" + b + "--\r\n";
        return upload_raw(c, b, body);
    };
    expect_error(with_expiry("last_accessed", "3600"), 400, "expires_after[anchor]");
    expect_error(with_expiry("created_at", "3599"), 400, "expires_after[seconds]");
    expect_error(with_expiry("created_at", "2592001"), 400, "expires_after[seconds]");
    expect_error(with_expiry("created_at", "1h"), 400, "expires_after[seconds]");
    BOOST_TEST(with_expiry("created_at", "3600").status == 200);

    // Only the two good uploads are stored; the server still answers.
    BOOST_TEST(g.stored_files() == 2);
    BOOST_TEST(body_of(c.get("/files")).at("data").as_array().size() == 2u);
}

BOOST_AUTO_TEST_CASE(duplicate_fields_are_refused_naming_the_param) {
    files_gateway g;
    auto& c = *g.alice;
    const std::string b = "DupBoundary";
    auto field = [&](const std::string& name, const std::string& value) {
        return "--" + b + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
    };
    auto file = [&](const std::string& content) {
        return "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n" +
               content + "\r\n";
    };
    const std::string end = "--" + b + "--\r\n";
    auto dup = [](const std::string& name) { return "Duplicate parameter: '" + name + "' may be sent only once."; };
    // The case observed: user_data, then a file that is not JSON, then batch.
    expect_error(upload_raw(c, b, field("purpose", "user_data") + file("not json\n") + field("purpose", "batch") + end),
                 400, "purpose", dup("purpose"));
    expect_error(upload_raw(c, b, field("purpose", "batch") + field("purpose", "batch") + file(jsonl(1)) + end), 400,
                 "purpose", dup("purpose"));
    expect_error(upload_raw(c, b, field("purpose", "batch") + file(jsonl(1)) + file(jsonl(1)) + end), 400, "file",
                 dup("file"));
    for (const std::string name : {"expires_after[anchor]", "expires_after[seconds]"}) {
        const std::string value = name.ends_with("[anchor]") ? "created_at" : "3600";
        expect_error(upload_raw(c, b, field("purpose", "batch") + field("expires_after[anchor]", "created_at") +
                                          field("expires_after[seconds]", "3600") + file(jsonl(1)) +
                                          field(name, value) + end),
                     400, name, dup(name));
    }
    // Unknown fields may repeat; they are ignored.
    response ok = upload_raw(c, b, field("x", "1") + field("x", "2") + field("purpose", "batch") + file(jsonl(1)) + end);
    BOOST_TEST(ok.status == 200, ok.body);
    BOOST_TEST(g.stored_files() == 1);
}

BOOST_AUTO_TEST_CASE(quota_answers_413) {
    files_gateway g(json::object{{"quota_files", 2}, {"quota_bytes", 1000}});
    BOOST_TEST(upload(*g.alice, "a.jsonl", jsonl(1)).status == 200);
    expect_error(upload(*g.alice, "big.bin", std::string(1001, 'x'), "user_data"), 413, "file", std::nullopt,
                 "quota_exceeded");
    BOOST_TEST(upload(*g.alice, "b.jsonl", jsonl(1)).status == 200);
    expect_error(upload(*g.alice, "c.jsonl", jsonl(1)), 413, "file", std::nullopt, "quota_exceeded");
    BOOST_TEST(upload(*g.bob, "c.jsonl", jsonl(1)).status == 200);  // per owner
    BOOST_TEST(g.stored_files() == 3);
}

BOOST_AUTO_TEST_CASE(content_length_over_the_file_limit_is_refused_before_the_body_is_read) {
    files_gateway g(json::object{{"max_file_bytes", 4096}});
    aqt::raw::connection raw(g.gw->port());
    // Only the headers are sent: the answer must not wait for the 10 MiB announced.
    BOOST_TEST_REQUIRE(raw.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + g.gw->bearer("alice") +
                                "\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 10485760\r\n\r\n"));
    auto r = raw.read_response(std::chrono::seconds(5));
    BOOST_TEST_REQUIRE(std::string(aqt::raw::to_string(r.how)) == "data");
    BOOST_TEST(r.data.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    BOOST_TEST(r.data.find("Connection: close\r\n") != std::string::npos);
    const std::string body = r.data.substr(r.data.find("\r\n\r\n") + 4);
    BOOST_TEST(body == R"({"error":{"message":"File is too large: the limit is 4096 bytes.","type":"invalid_request_error","param":"file","code":null}})");
    BOOST_TEST(g.stored_files() == 0);
}

BOOST_AUTO_TEST_CASE(a_stalled_upload_does_not_block_other_uploads) {
    files_gateway g;
    const std::string b = "StalledBoundary";
    const std::string content = jsonl(3000);  // far more than the parser's lookahead
    std::string head = "--" + b + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + b +
                       "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.jsonl\"\r\n\r\n";
    std::string tail = "\r\n--" + b + "--\r\n";
    aqt::raw::connection slow(g.gw->port());
    BOOST_TEST_REQUIRE(slow.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + g.gw->bearer("alice") +
                                 "\r\nContent-Type: multipart/form-data; boundary=" + b + "\r\nContent-Length: " +
                                 std::to_string(head.size() + content.size() + tail.size()) + "\r\n\r\n" + head +
                                 content.substr(0, content.size() - 5)));
    // The slow upload is inside its file part, past the parser's boundary lookahead, so its
    // content has reached the store.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // Meanwhile another owner uploads and lists: neither waits for the stalled client.
    auto other = upload(*g.bob, "quick.jsonl", jsonl(1));
    BOOST_TEST(other.status == 200);
    BOOST_TEST(body_of(g.bob->get("/files")).at("data").as_array().size() == 1u);
    // The stalled upload then finishes normally.
    BOOST_TEST_REQUIRE(slow.send(content.substr(content.size() - 5) + tail));
    auto r = slow.read_response(std::chrono::seconds(10));
    BOOST_TEST(r.data.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    BOOST_TEST(g.stored_files() == 2);
}

BOOST_AUTO_TEST_CASE(client_disconnect_mid_upload_rolls_back) {
    files_gateway g;
    const std::string b = "DisconnectBoundary";
    std::string head = "--" + b + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n--" + b +
                       "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n";
    {
        aqt::raw::connection raw(g.gw->port());
        std::string request = "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + g.gw->bearer("alice") +
                              "\r\nContent-Type: multipart/form-data; boundary=" + b +
                              "\r\nContent-Length: 20000000\r\n\r\n" + head;
        BOOST_TEST_REQUIRE(raw.send(request));
        std::string block = binary_content(1024 * 1024);
        for (int i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(raw.send(block));  // 3 chunks reach the database
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }  // closed mid-body
    // The rollback is visible once the handler has noticed; the server keeps serving.
    g.wait_for_rollback();
    BOOST_TEST(g.stored_contents() == 0);
    BOOST_TEST(g.stored_files() == 0);
    BOOST_TEST(body_of(g.alice->get("/files")).at("data").as_array().empty());
    BOOST_TEST(upload(*g.alice, "after.jsonl", jsonl(1)).status == 200);
}

// A large upload streams into the plugin as it arrives (the host's stream_bodies_after_bytes):
// a bad first line is answered while the client is still sending, the connection closes after
// the answer (the rest of the body is never read), and nothing is stored.
BOOST_AUTO_TEST_CASE(a_large_batch_upload_with_a_bad_first_line_is_answered_while_it_streams) {
    files_gateway g;
    const std::string b = "EarlyBoundary";
    const std::string head = "--" + b + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + b +
                             "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n";
    aqt::raw::connection raw(g.gw->port());
    BOOST_TEST_REQUIRE(raw.send("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: " + g.gw->bearer("alice") +
                                "\r\nContent-Type: multipart/form-data; boundary=" + b +
                                "\r\nContent-Length: 20000000\r\n\r\n" + head + "{oops\n" +
                                std::string(2 * 1024 * 1024, ' ')));
    const auto got = raw.read_response(std::chrono::seconds(20));
    const response r = aqt::raw::parse_response(got.data);
    expect_error(r, 400, "file", "Invalid JSON at line 1");
    BOOST_TEST(r.header("connection") == "close");
    const auto end = raw.read_until_close(std::chrono::seconds(10));
    BOOST_TEST(aqt::raw::to_string(end.how) != aqt::raw::to_string(aqt::raw::ending::timeout));
    g.wait_for_rollback();
    BOOST_TEST(g.stored_contents() == 0);
    BOOST_TEST(g.stored_files() == 0);
    BOOST_TEST(upload(*g.alice, "after.jsonl", jsonl(1)).status == 200);
}

BOOST_AUTO_TEST_CASE(team_token_files_belong_to_the_team) {
    files_gateway g;
    aqt::http::client carol(g.gw->port());
    carol.default_headers["Authorization"] = g.gw->bearer("carol");
    response up = upload(carol, "team.jsonl", jsonl(1));
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    BOOST_TEST(carol.get("/files/" + id_of(up)).status == 200);
    BOOST_TEST(g.alice->get("/files/" + id_of(up)).status == 404);
}

BOOST_AUTO_TEST_CASE(unknown_config_key_fails_startup_naming_it) {
    json::object files{{"enabled", true}, {"max_file_byte", 5}};
    auto failure = aqt::expect_startup_failure(json::object{{"plugins", json::object{{"files", files}}}});
    BOOST_TEST(!failure.status.success());
    BOOST_TEST(failure.log.find("plugins.files.max_file_byte: unknown key") != std::string::npos, failure.log);
}

BOOST_AUTO_TEST_CASE(an_unknown_s3_payload_signing_fails_startup_naming_the_choices) {
    json::object s3{{"endpoint", "http://127.0.0.1:9"}, {"bucket", "b"}, {"access_key", "a"},
                    {"secret_key", "s"}, {"payload_signing", "sometimes"}};
    json::object files{{"enabled", true}, {"store", "s3"}, {"s3", s3}};
    auto failure = aqt::expect_startup_failure(json::object{{"plugins", json::object{{"files", files}}}});
    BOOST_TEST(!failure.status.success());
    BOOST_TEST(failure.log.find("plugins.files.s3.payload_signing: must be \"unless_tls\", \"always\" or \"never\"") !=
                   std::string::npos,
               failure.log);
}

BOOST_AUTO_TEST_CASE(an_unknown_s3_large_objects_fails_startup_naming_the_choices) {
    json::object s3{{"endpoint", "http://127.0.0.1:9"}, {"bucket", "b"}, {"access_key", "a"},
                    {"secret_key", "s"}, {"large_objects", "streamed"}};
    json::object files{{"enabled", true}, {"store", "s3"}, {"s3", s3}};
    auto failure = aqt::expect_startup_failure(json::object{{"plugins", json::object{{"files", files}}}});
    BOOST_TEST(!failure.status.success());
    BOOST_TEST(failure.log.find("plugins.files.s3.large_objects: must be \"auto\" or \"multipart\"") !=
                   std::string::npos,
               failure.log);
}

// ---- owner keys ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_user_and_a_team_with_the_same_name_are_isolated_on_every_route) {
    files_gateway g;
    aqt::http::client team(g.gw->port()), user(g.gw->port());
    team.default_headers["Authorization"] = g.gw->bearer("carol");          // team "research"
    user.default_headers["Authorization"] = g.gw->bearer("research-user");  // user "research"
    response t = upload(team, "team.jsonl", jsonl(1, "t"));
    response u = upload(user, "user.jsonl", jsonl(2, "u"));
    BOOST_TEST_REQUIRE(t.status == 200, t.body);
    BOOST_TEST_REQUIRE(u.status == 200, u.body);
    const std::string tid = id_of(t), uid = id_of(u);

    for (auto [who, self, mine, theirs, content] : {std::tuple{"team research", &team, tid, uid, jsonl(1, "t")},
                                                      std::tuple{"user research", &user, uid, tid, jsonl(2, "u")}}) {
        BOOST_TEST_CONTEXT("as " << who) {
            expect_not_found(self->get("/v1/files/" + theirs), theirs);
            expect_not_found(self->get("/v1/files/" + theirs + "/content"), theirs);
            expect_not_found(self->request("DELETE", "/v1/files/" + theirs), theirs);
            expect_error(self->get("/v1/files?after=" + theirs), 400, "after", "No such File object: " + theirs);
            auto list = body_of(self->get("/v1/files"));
            BOOST_TEST_REQUIRE(list.at("data").as_array().size() == 1u);
            BOOST_TEST(list.at("data").as_array()[0].at("id") == json::value(mine));
            response own = self->get("/v1/files/" + mine + "/content");
            BOOST_TEST(own.status == 200);
            BOOST_TEST(own.body == content);
        }
    }
    // Nothing was deleted by the refused DELETEs; the stored keys say who owns what.
    BOOST_TEST(g.stored_files() == 2);
    BOOST_TEST(g.count("select count(*) from files where owner = 'team:research' and id = '" + tid + "'") == 1);
    BOOST_TEST(g.count("select count(*) from files where owner = 'user:research' and id = '" + uid + "'") == 1);
    BOOST_TEST(team.request("DELETE", "/v1/files/" + tid).status == 200);
    BOOST_TEST(user.request("DELETE", "/v1/files/" + uid).status == 200);
    BOOST_TEST(g.stored_files() == 0);
}

namespace {

// An empty database of the kind under test, outside any gateway (removed at the end).
struct fresh_database {
    std::string url;
    std::filesystem::path dir;
    fresh_database() {
#ifdef AQ_TEST_POSTGRES
        url = aqt::postgres_url();
#else
        dir = std::filesystem::temp_directory_path() / ("aqt-legacy-" + aqt::random_hex(6));
        std::filesystem::create_directories(dir);
        url = "sqlite:" + (dir / "legacy.db").string();
#endif
    }
    ~fresh_database() {
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(bare_owner_names_are_migrated_to_owner_keys_once) {
    fresh_database db;
    // Schema version 1 as it shipped, with rows owned by bare names.
#ifdef AQ_TEST_POSTGRES
    const std::string int64 = "bigint", blob = "bytea";
    auto content_sql = [](const std::string& text) { return "'" + text + "'::bytea"; };
#else
    const std::string int64 = "integer", blob = "blob";
    auto content_sql = [](const std::string& text) { return "cast('" + text + "' as blob)"; };
#endif
    db_exec(db.url, "create table files (id text primary key, owner text not null, filename text not null,"
                    " purpose text not null, bytes " + int64 + " not null, created_at " + int64 + " not null,"
                    " expires_at " + int64 + " not null, sha256 text not null, chunk_bytes integer not null)");
    db_exec(db.url, "create table file_chunks (file_id text not null references files (id) on delete cascade,"
                    " seq integer not null, data " + blob + " not null, primary key (file_id, seq))");
    db_exec(db.url, "create table aq_schema (component text primary key, version integer not null)");
    db_exec(db.url, "insert into aq_schema (component, version) values ('files', 1)");
    struct legacy_row {
        std::string id, owner, key;
    };
    const std::vector<legacy_row> rows = {
        {"file-legacyalice00000000000000", "alice", "user:alice"},
        {"file-legacyteam000000000000000", "research", "team:research"},  // listed as a team
        {"file-legacybob0000000000000000", "bob", "user:bob"},
        {"file-legacyodd0000000000000000", "user:x", "user:user:x"},      // rewritten exactly once
    };
    for (const auto& r : rows) {
        std::string text = "content of " + r.id;
        db_exec(db.url, "insert into files values ('" + r.id + "', '" + r.owner + "', 'old.jsonl', 'batch', " +
                            std::to_string(text.size()) + ", 1700000000, 4000000000, '" + aqt::sha256_hex(text) +
                            "', 1048576)");
        db_exec(db.url, "insert into file_chunks values ('" + r.id + "', 0, " + content_sql(text) + ")");
    }

    json::object files{{"enabled", true}, {"database", db.url}, {"legacy_team_owners", json::array{"research", "ops"}}};
    aqt::gateway gw(json::object{{"plugins", json::object{{"files", files}}}});
    BOOST_TEST(gw.wait_for_log("files: owners migrated to owner keys: 3 user name(s), 1 team name(s)"), gw.log());
    for (const auto& r : rows)
        BOOST_TEST(db_value(db.url, "select owner from files where id = '" + r.id + "'") == r.key);

    auto client_of = [&](const char* principal) {
        auto c = std::make_unique<aqt::http::client>(gw.port());
        c->default_headers["Authorization"] = gw.bearer(principal);
        return c;
    };
    auto alice = client_of("alice"), bob = client_of("bob"), carol = client_of("carol"),
         research = client_of("research-user");
    response a = alice->get("/v1/files/" + rows[0].id + "/content");
    BOOST_TEST(a.status == 200);
    BOOST_TEST(a.body == "content of " + rows[0].id);
    BOOST_TEST(carol->get("/v1/files/" + rows[1].id).status == 200);
    expect_not_found(research->get("/v1/files/" + rows[1].id), rows[1].id);  // the team's, not the user's
    BOOST_TEST(bob->get("/v1/files/" + rows[2].id).status == 200);
    expect_not_found(alice->get("/v1/files/" + rows[2].id), rows[2].id);
    BOOST_TEST(body_of(research->get("/v1/files")).at("data").as_array().empty());

    // A restart finds schema 2 and rewrites nothing again.
    gw.restart();
    for (const auto& r : rows)
        BOOST_TEST(db_value(db.url, "select owner from files where id = '" + r.id + "'") == r.key);
    BOOST_TEST(gw.log().find("owners migrated") == std::string::npos);
    BOOST_TEST(db_value(db.url, "select version from aq_schema where component = 'files'") == "4");  // 4: the Uploads API's tables
    // Rows from before content stores are files in the database store, keyed by their id.
    for (const auto& r : rows)
        BOOST_TEST(db_value(db.url, "select store || ' ' || content_key || ' ' || state from files where id = '" +
                                        r.id + "'") == "database " + r.id + " ready");
}

BOOST_AUTO_TEST_CASE(upload_sessions_must_leave_sessions_for_short_requests) {
    json::object files{{"enabled", true}, {"pool_size", 4}, {"upload_sessions", 4}};
    auto failure = aqt::expect_startup_failure(json::object{{"plugins", json::object{{"files", files}}}});
    BOOST_TEST(failure.log.find("plugins.files.upload_sessions: must be below pool_size (4): the rest serve short "
                                "requests") != std::string::npos,
               failure.log);
}

BOOST_AUTO_TEST_CASE(legacy_team_owners_must_be_names) {
    for (const json::value& bad : {json::value("research"), json::value(json::array{""}), json::value(json::array{1})}) {
        json::object files{{"enabled", true}, {"legacy_team_owners", bad}};
        auto failure = aqt::expect_startup_failure(json::object{{"plugins", json::object{{"files", files}}}});
        BOOST_TEST(failure.log.find("plugins.files.legacy_team_owners: must be an array of") != std::string::npos,
                   failure.log);
    }
}
