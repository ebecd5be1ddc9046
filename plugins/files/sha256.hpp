// Incremental message digests (OpenSSL EVP): SHA-256 for the ETag and metadata of stored content,
// MD5 for the checksum a client may give when it completes an Upload (uploads.hpp).
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aq::files {

class evp_digest {
public:
    explicit evp_digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1) throw std::runtime_error("digest unavailable");
    }
    void update(std::string_view data) {
        if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) throw std::runtime_error("digest failed");
    }
    // Lowercase hex digest; the object cannot be updated afterwards.
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) throw std::runtime_error("digest failed");
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

class sha256 : public evp_digest {
public:
    sha256() : evp_digest(EVP_sha256()) {}
};

class md5 : public evp_digest {
public:
    md5() : evp_digest(EVP_md5()) {}
};

}  // namespace aq::files
