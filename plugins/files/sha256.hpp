// Incremental SHA-256 (OpenSSL EVP), for the ETag and metadata of stored content.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aq::files {

class sha256 {
public:
    sha256() : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("SHA-256 unavailable");
    }
    void update(std::string_view data) {
        if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) throw std::runtime_error("SHA-256 failed");
    }
    // Lowercase hex digest; the object cannot be updated afterwards.
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) throw std::runtime_error("SHA-256 failed");
        static constexpr char digits[] = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < len; ++i) {
            out.push_back(digits[md[i] >> 4]);
            out.push_back(digits[md[i] & 15]);
        }
        return out;
    }

private:
    struct deleter {
        void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, deleter> ctx_;
};

}  // namespace aq::files
