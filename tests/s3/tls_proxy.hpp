// A TLS front for the real S3 server, so the client's https path (certificate and host name
// verification) runs against the same Swift: TLS is accepted on a random 127.0.0.1 port with
// the given certificate and key (PEM files), and the plain bytes are forwarded to the upstream
// port. One thread accepts; each connection has its own. OpenSSL directly, no Asio.
#pragma once

#include <memory>
#include <string>

namespace aqt {

class tls_proxy {
public:
    // Throws std::runtime_error when the certificate or key cannot be loaded.
    tls_proxy(unsigned short upstream_port, const std::string& cert_file, const std::string& key_file);
    ~tls_proxy();
    tls_proxy(const tls_proxy&) = delete;
    tls_proxy& operator=(const tls_proxy&) = delete;

    unsigned short port() const noexcept;
    int handshakes() const noexcept;  // TLS handshakes that completed

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace aqt
