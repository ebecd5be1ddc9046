// A certificate authority made for one test with the openssl command line, and server
// certificates it issues (EC P-256, valid from an hour ago for two days, subjectAltName
// DNS:localhost and IP:127.0.0.1), so TLS tests never depend on a checked-in certificate or
// on the machine's clock. Clients trust ca_file (curl --cacert, NODE_EXTRA_CA_CERTS).
#pragma once

#include <filesystem>
#include <string>

namespace aqt {

class test_ca {
public:
    // Makes the CA in a fresh temp dir (removed by the destructor).
    test_ca();
    ~test_ca();
    test_ca(const test_ca&) = delete;
    test_ca& operator=(const test_ca&) = delete;

    struct issued {
        std::filesystem::path cert, key;
        std::string serial;  // uppercase hex, as OpenSSL prints it
    };
    // A server certificate and key written to <dir>/<name>.pem and <dir>/<name>.key.
    issued issue(const std::string& name, const std::string& common_name = "localhost");

    const std::filesystem::path& dir() const noexcept { return dir_; }
    const std::filesystem::path& ca_file() const noexcept { return ca_file_; }

private:
    std::filesystem::path dir_, ca_file_, ca_key_;
};

}  // namespace aqt
