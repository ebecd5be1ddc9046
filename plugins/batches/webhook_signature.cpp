#include "webhook_signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace batches {

std::optional<std::string> decode_webhook_secret(std::string_view secret) {
    constexpr std::string_view prefix = "whsec_";
    if (!secret.starts_with(prefix)) return std::nullopt;
    std::string_view b64 = secret.substr(prefix.size());
    if (b64.empty() || b64.size() % 4 != 0) return std::nullopt;
    // EVP_DecodeBlock rejects characters outside the alphabet but decodes padding as zero bytes
    // and ignores surrounding blanks: padding is counted here, blanks are refused.
    std::size_t pad = b64.ends_with("==") ? 2 : b64.ends_with("=") ? 1 : 0;
    for (std::size_t i = 0; i < b64.size() - pad; ++i) {
        unsigned char c = static_cast<unsigned char>(b64[i]);
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!ok) return std::nullopt;
    }
    std::string out(b64.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::string webhook_signature(std::string_view key, std::string_view webhook_id, long long timestamp,
                              std::string_view body) {
    std::string signed_text;
    signed_text.reserve(webhook_id.size() + body.size() + 24);
    signed_text.append(webhook_id).append(".").append(std::to_string(timestamp)).append(".").append(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(signed_text.data()),
         signed_text.size(), mac, &mac_len);
    std::string b64(4 * ((mac_len + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), mac, static_cast<int>(mac_len));
    b64.resize(static_cast<std::size_t>(n));
    return "v1," + b64;
}

}  // namespace batches
