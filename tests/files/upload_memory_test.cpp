// The gateway's memory does not grow with a batch file: a 1 GiB file of 2 million lines (the
// request limit raised to allow it) is generated while it streams, uploaded over HTTP with
// purpose "batch" (so every line is validated and every custom_id checked for duplicates), and
// downloaded again; aqueductd's peak RSS (VmHWM) may grow by less than 64 MiB.
#define BOOST_TEST_MODULE files_upload_memory
#include <boost/test/unit_test.hpp>

#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/process_stats.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstring>
#include <string>

namespace json = boost::json;

namespace {

// The multipart body of a batch file of `lines` lines of `line_bytes` bytes each (newline
// included), produced piece by piece as the client sends it, and hashed on the way.
class batch_body {
public:
    batch_body(std::uint64_t lines, std::size_t line_bytes) : lines_(lines), line_bytes_(line_bytes) {
        const std::string b = "MemoryTestBoundary";
        head_ = "--" + b + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + b +
                "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n";
        tail_ = "\r\n--" + b + "--\r\n";
        content_type_ = "multipart/form-data; boundary=" + b;
    }
    std::uint64_t file_bytes() const { return lines_ * line_bytes_; }
    std::uint64_t body_bytes() const { return head_.size() + file_bytes() + tail_.size(); }
    const std::string& content_type() const { return content_type_; }
    std::string file_sha256() { return hash_.hex(); }

    std::size_t fill(char* buf, std::size_t cap) {
        std::size_t n = 0;
        while (n < cap) {
            if (pending_.empty()) {
                if (!head_sent_) {
                    pending_ = head_;
                    head_sent_ = true;
                } else if (next_ < lines_) {
                    pending_ = line(next_++);
                    hash_.update(pending_);
                } else if (!tail_sent_) {
                    pending_ = tail_;
                    tail_sent_ = true;
                } else {
                    break;
                }
                offset_ = 0;
            }
            std::size_t take = std::min(cap - n, pending_.size() - offset_);
            std::memcpy(buf + n, pending_.data() + offset_, take);
            n += take;
            offset_ += take;
            if (offset_ == pending_.size()) pending_.clear();
        }
        return n;
    }

private:
    std::string line(std::uint64_t i) const {
        std::string id = std::to_string(i);
        id.insert(0, 10 - id.size(), '0');
        std::string out = R"({"custom_id":"request-)" + id +
                          R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":")";
        const std::string end = "\"}]}}\n";
        out.append(line_bytes_ - out.size() - end.size(), 'x');
        return out + end;
    }

    std::uint64_t lines_;
    std::size_t line_bytes_;
    std::string head_, tail_, content_type_, pending_;
    std::size_t offset_ = 0;
    std::uint64_t next_ = 0;
    bool head_sent_ = false, tail_sent_ = false;
    aqt::sha256 hash_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_1_gib_batch_file_of_2_million_lines_keeps_rss_growth_under_64_mib) {
    constexpr std::uint64_t lines = 2'000'000;
    constexpr std::size_t line_bytes = 537;  // 2,000,000 x 537 = 1.0 GiB
    aqt::gateway gw(json::object{
        {"plugins", json::object{{"files", json::object{{"enabled", true},
                                                        {"max_file_bytes", 2ll << 30},
                                                        {"max_requests_per_file", lines}}}}}});
    aqt::http::client c(gw.port(), std::chrono::minutes(10));
    c.default_headers["Authorization"] = gw.bearer("alice");

    // Warm up: the first upload and download allocate the per-thread and per-route state.
    aqt::multipart small;
    small.field("purpose", "batch")
        .file("file", "small.jsonl",
              R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})");
    auto warm = c.request("POST", "/v1/files", {{"Content-Type", small.content_type()}}, small.body());
    BOOST_TEST_REQUIRE(warm.status == 200, warm.body);
    BOOST_TEST_REQUIRE(c.get("/v1/files/" + std::string(json::parse(warm.body).at("id").as_string()) + "/content")
                           .status == 200);

    const long long before = aqt::status_kib(gw.pid(), "VmRSS");
    batch_body body(lines, line_bytes);
    aqt::http::request up;
    up.method = "POST";
    up.target = "/v1/files";
    up.headers = {{"Content-Type", body.content_type()}};
    up.content_length = body.body_bytes();
    up.body_source = [&](char* buf, std::size_t cap) { return body.fill(buf, cap); };
    up.chunk_size = 1 << 20;
    auto started = std::chrono::steady_clock::now();
    auto r = c.send(up);
    auto upload_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    auto file = json::parse(r.body).as_object();
    BOOST_TEST(file.at("bytes").as_int64() == static_cast<std::int64_t>(body.file_bytes()));
    const long long after_upload = aqt::status_kib(gw.pid(), "VmHWM");

    aqt::http::request down;
    down.target = "/v1/files/" + std::string(file.at("id").as_string()) + "/content";
    down.keep_body = false;
    auto d = c.send(down);
    BOOST_TEST(d.status == 200);
    BOOST_TEST(d.body_bytes == body.file_bytes());
    BOOST_TEST(d.body_sha256 == body.file_sha256());
    const long long after_download = aqt::status_kib(gw.pid(), "VmHWM");

    BOOST_TEST_MESSAGE("1 GiB batch upload (2,000,000 lines, validated) took " << upload_ms << " ms; RSS before "
                       << before / 1024 << " MiB, peak after upload " << after_upload / 1024
                       << " MiB, after download " << after_download / 1024 << " MiB");
    BOOST_TEST(after_upload - before < 64 * 1024, "upload grew the peak RSS by " << (after_upload - before) << " KiB");
    BOOST_TEST(after_download - before < 64 * 1024,
               "download grew the peak RSS by " << (after_download - before) << " KiB");
}
