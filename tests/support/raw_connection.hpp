// A plain TCP connection for what a well-behaved client never sends: malformed request lines,
// partial headers, bodies that stop halfway. Reads return what arrived and how reading ended.
// With connection_options::tls_ca_file it speaks TLS (OpenSSL, verifying the server's
// certificate against that CA and the name), for the TLS listener's tests.
#pragma once

#include "http_client.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aqt::raw {

enum class ending {
    data,     // stopped because the wanted data arrived
    closed,   // orderly close by the peer (FIN)
    reset,    // connection reset by the peer (RST)
    timeout,  // nothing more within the timeout
};

const char* to_string(ending e) noexcept;

struct read_result {
    std::string data;
    ending how = ending::timeout;
};

// How a raw connection is set up before it connects.
struct connection_options {
    int receive_buffer = 0;    // SO_RCVBUF, so a client that stops reading stalls the server soon
    std::string source_address;  // bind to this local address first (e.g. "127.0.0.2")
    // TLS: the CA file the server's certificate must chain to (empty: plain TCP), the name it
    // must carry (and SNI), and the highest version offered (0: the library's; 0x0303: TLS 1.2).
    std::string tls_ca_file{};
    std::string tls_server_name = "localhost";
    int tls_max_version = 0;
};

class connection {
public:
    explicit connection(unsigned short port);
    connection(unsigned short port, const connection_options& options);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Sends all bytes; false when the peer closed or reset the connection.
    bool send(std::string_view bytes);
    // Half-close: no more data from us.
    void shutdown_write();

    // Reads until `needle` has arrived (data), the peer closed or reset, or the timeout.
    read_result read_until(std::string_view needle, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Reads until the peer closes or resets, or the timeout.
    read_result read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Reads one complete HTTP/1.1 response with a Content-Length (or none): header + body.
    read_result read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Whatever arrives within `timeout` (may be empty).
    read_result read_for(std::chrono::milliseconds timeout);

    // Bytes received but not yet returned by a read (after read_until's needle).
    const std::string& pending() const noexcept { return pending_; }
    int fd() const noexcept { return fd_; }

    // TLS connections: the serial number of the server's certificate (uppercase hex) and the
    // protocol version ("TLSv1.3").
    std::string peer_serial() const;
    std::string tls_version() const;

private:
    ending fill(std::chrono::steady_clock::time_point deadline);
    struct tls_state;
    std::unique_ptr<tls_state> tls_;

    int fd_ = -1;
    std::string pending_;
    bool eof_ = false;
};

// Splits raw bytes holding one or more complete HTTP/1.1 responses (Content-Length or chunked
// framing, or none) into parsed responses; throws std::runtime_error on bytes that do not parse.
std::vector<http::response> parse_responses(std::string_view bytes);
// Exactly one response; throws when there are none or more than one.
http::response parse_response(std::string_view bytes);

}  // namespace aqt::raw
