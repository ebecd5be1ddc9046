#include "auth.hpp"

#include "ascii.hpp"

#include <aqueduct/plugin.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace aqd {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

struct context_free {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

// Every request's token is hashed. EVP_Digest with EVP_sha256() made OpenSSL 3 look the
// implementation up in its provider store and allocate a context each time: 3.6% of the
// gateway's CPU on a metadata GET. The digest is fetched once, and each thread keeps a context.
void digest(std::string_view data, unsigned char (&out)[32]) {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, context_free> context(EVP_MD_CTX_new());
    unsigned int len = 0;
    if (!sha256 || !context || EVP_DigestInit_ex2(context.get(), sha256, nullptr) != 1 ||
        EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(context.get(), out, &len) != 1 || len != 32)
        throw std::runtime_error("SHA-256 failed (OpenSSL EVP_Digest)");
}


}  // namespace

std::string sha256_hex(std::string_view data) {
    unsigned char d[32];
    digest(data, d);
    std::string out(64, '\0');
    for (std::size_t i = 0; i < 32; ++i) {
        out[2 * i] = hex_digits[d[i] >> 4];
        out[2 * i + 1] = hex_digits[d[i] & 0xf];
    }
    return out;
}

authenticator::authenticator(const std::vector<token_config>& tokens) : table_(build(tokens)) {}

void authenticator::replace(const std::vector<token_config>& tokens) {
    auto fresh = build(tokens);
    std::lock_guard lock(mutex_);
    table_ = std::move(fresh);
}

std::size_t authenticator::size() const {
    std::lock_guard lock(mutex_);
    return table_->size();
}

std::shared_ptr<const authenticator::table> authenticator::build(const std::vector<token_config>& tokens) {
    auto entries = std::make_shared<table>();
    entries->reserve(tokens.size());
    for (const token_config& t : tokens) {
        // The config validates digests already; this guards callers that build tokens by hand.
        if (t.sha256.size() != 64)
            throw std::invalid_argument("token " + t.name + ": sha256 must be 64 lowercase hex digits");
        entry e{};
        for (std::size_t i = 0; i < 32; ++i) {
            const int hi = aq::hex_value(t.sha256[2 * i]);
            const int lo = aq::hex_value(t.sha256[2 * i + 1]);
            if (hi < 0 || lo < 0)
                throw std::invalid_argument("token " + t.name + ": sha256 must be 64 lowercase hex digits");
            e.digest[i] = static_cast<unsigned char>(hi << 4 | lo);
        }
        e.who = principal{t.name, t.user, t.team};
        entries->push_back(std::move(e));
    }
    return entries;
}

std::shared_ptr<const principal> authenticator::authenticate(std::string_view authorization) const {
    constexpr std::string_view scheme = "Bearer";
    if (authorization.size() <= scheme.size() || !iequals(authorization.substr(0, scheme.size()), scheme))
        return nullptr;
    std::string_view rest = authorization.substr(scheme.size());
    const std::size_t token_start = rest.find_first_not_of(' ');
    if (token_start == 0 || token_start == std::string_view::npos) return nullptr;  // "Bearerx", "Bearer "
    const std::string_view token = rest.substr(token_start);

    unsigned char presented[32];
    digest(token, presented);

    std::shared_ptr<const table> entries;
    {
        std::lock_guard lock(mutex_);
        entries = table_;
    }
    // Every entry is compared, whatever matched earlier: the time taken does not depend on
    // which token (if any) was presented.
    const principal* found = nullptr;
    for (const entry& e : *entries) {
        const bool same = CRYPTO_memcmp(presented, e.digest, sizeof presented) == 0;
        found = same ? &e.who : found;
    }
    if (!found) return nullptr;
    return std::shared_ptr<const principal>(std::move(entries), found);  // keeps the table alive
}

}  // namespace aqd
