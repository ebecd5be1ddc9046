// A blocking HTTP/1.1 client for tests, keeping one keep-alive connection to 127.0.0.1:port.
//
//   aqt::http::client c(gw.port());
//   c.default_headers["Authorization"] = gw.bearer("alice");
//   auto r = c.request("POST", "/echo", {{"Content-Type", "text/plain"}}, "hello");
//   BOOST_TEST(r.status == 200);
//
// The connection is opened on first use and reopened when the server closed it (connections()
// counts the TCP connects, so a test can prove that requests shared one). Large bodies can be
// generated (body_source) and consumed (keep_body = false: only size and SHA-256 are kept).
// `Expect: 100-continue` in the headers makes the client wait for the interim response before
// it sends the body; a final response instead means the body is never sent.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aqt::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lowercase names; repeated headers joined by ", "
    std::string body;                            // empty when the request set keep_body = false
    std::uint64_t body_bytes = 0;
    std::string body_sha256;                     // lowercase hex of the body
    bool saw_continue = false;                   // a "100 Continue" came before this response

    // The header's value or "" when absent (name case-insensitive).
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
    // The body parsed as JSON; throws when it is not JSON.
    boost::json::value json() const;
};

struct request {
    std::string method = "GET";
    std::string target = "/";
    header_list headers;
    std::string body;
    // Streamed body: called until it returns 0. With content_length the body is sent with that
    // Content-Length, otherwise chunked.
    std::function<std::size_t(char* buf, std::size_t cap)> body_source;
    std::optional<std::uint64_t> content_length;
    bool chunked = false;          // send `body` with Transfer-Encoding: chunked
    std::size_t chunk_size = 64 * 1024;
    bool keep_body = true;         // false: the response body is hashed and counted, not kept
};

class client {
public:
    explicit client(unsigned short port, std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // Added to every request unless the request sets the same header.
    std::map<std::string, std::string> default_headers;

    response request(const std::string& method, const std::string& target, const header_list& headers = {},
                     const std::string& body = {});
    response send(const http::request& req);

    response get(const std::string& target, const header_list& headers = {}) {
        return request("GET", target, headers);
    }
    response post(const std::string& target, const std::string& body, const header_list& headers = {}) {
        return request("POST", target, headers, body);
    }

    // TCP connections opened so far.
    int connections() const noexcept;
    // Whether the current connection is open (the server has not closed it as far as we know).
    bool connected() const noexcept;
    void close();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace aqt::http
