// SHA-256 for tests: hashing tokens the way the config stores them, and checking that bytes
// that went through the gateway came back unchanged without keeping them in memory.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace aqt {

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Lowercase hex MD5 of `data` (the checksum OpenAI's Uploads API takes).
std::string md5_hex(std::string_view data);

// Incremental SHA-256 for bodies too large to hold.
class sha256 {
public:
    sha256();
    ~sha256();
    sha256(const sha256&) = delete;
    sha256& operator=(const sha256&) = delete;

    void update(std::string_view data);
    // Lowercase hex digest; the object is reset afterwards.
    std::string hex();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// `bytes` random bytes from OpenSSL's CSPRNG as lowercase hex.
std::string random_hex(std::size_t bytes);

}  // namespace aqt
