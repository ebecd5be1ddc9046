#include "digest.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

namespace aqt {

namespace {

std::string to_hex(const unsigned char* data, std::size_t len) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (std::size_t i = 0; i < len; ++i) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0xf]);
    }
    return out;
}

}  // namespace

struct sha256::impl {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~impl() { EVP_MD_CTX_free(ctx); }
    void reset() {
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("sha256: EVP_DigestInit_ex failed");
    }
};

sha256::sha256() : impl_(std::make_unique<impl>()) { impl_->reset(); }
sha256::~sha256() = default;

void sha256::update(std::string_view data) {
    if (EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) != 1)
        throw std::runtime_error("sha256: EVP_DigestUpdate failed");
}

std::string sha256::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1)
        throw std::runtime_error("sha256: EVP_DigestFinal_ex failed");
    impl_->reset();
    return to_hex(md, len);
}

std::string sha256_hex(std::string_view data) {
    sha256 h;
    h.update(data);
    return h.hex();
}

std::string md5_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1)
        throw std::runtime_error("md5: EVP_Digest failed");
    return to_hex(md, len);
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> buf(bytes);
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return to_hex(buf.data(), buf.size());
}

}  // namespace aqt
