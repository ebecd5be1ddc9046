// Bearer-token authentication.
//
// Tokens live in the config only as SHA-256 hex digests. A presented token is hashed and compared
// in constant time against every configured digest (no early exit, so timing does not reveal
// which or how much matched).
//
// The tokens can be replaced while the host runs (a reload on SIGHUP): a removed token stops
// working for the next request, a new one works at once, and a request that authenticated before
// keeps its principal (it holds the table it was found in) until it ends.
#pragma once

#include "config.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aqd {

struct principal {
    std::string token_name;
    std::string user;
    std::string team;  // empty for a personal token
};

// Lowercase hex SHA-256 (OpenSSL EVP).
std::string sha256_hex(std::string_view data);

class authenticator {
public:
    // Throws std::invalid_argument for a digest that is not 64 hex digits.
    explicit authenticator(const std::vector<token_config>& tokens);

    // `authorization` is the Authorization header value ("Bearer <token>", scheme
    // case-insensitive). null when it is malformed or no token matches. Thread: any.
    std::shared_ptr<const principal> authenticate(std::string_view authorization) const;

    // Puts these tokens in force for every later authenticate(). Throws std::invalid_argument
    // (and changes nothing) like the constructor. Thread: any.
    void replace(const std::vector<token_config>& tokens);

    std::size_t size() const;

private:
    struct entry {
        unsigned char digest[32];
        principal who;
    };
    using table = std::vector<entry>;
    static std::shared_ptr<const table> build(const std::vector<token_config>& tokens);

    mutable std::mutex mutex_;  // guards the pointer only; a table never changes
    std::shared_ptr<const table> table_;
};

}  // namespace aqd
