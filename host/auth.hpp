// Bearer-token authentication.
//
// Tokens live in the config only as SHA-256 hex digests. A presented token is hashed and compared
// in constant time against every configured digest (no early exit, so timing does not reveal
// which or how much matched).
#pragma once

#include "config.hpp"

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
    explicit authenticator(const std::vector<token_config>& tokens);

    // `authorization` is the Authorization header value ("Bearer <token>", scheme
    // case-insensitive). nullptr when it is malformed or no token matches. The principal lives
    // as long as the authenticator.
    const principal* authenticate(std::string_view authorization) const;

private:
    struct entry {
        unsigned char digest[32];
        principal who;
    };
    std::vector<entry> entries_;
};

}  // namespace aqd
