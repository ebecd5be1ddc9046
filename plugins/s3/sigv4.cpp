#include "sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <stdexcept>

namespace aq::s3 {

std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return to_hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
        throw std::runtime_error("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<const char*>(md), len);
}

std::string uri_encode(std::string_view raw, bool keep_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(raw.size() + raw.size() / 2);
    for (unsigned char c : raw) {
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '_' || c == '.' || c == '~';
        if (unreserved || (keep_slash && c == '/')) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string canonical_path(std::string_view raw_path) {
    if (raw_path.empty()) return "/";
    return uri_encode(raw_path, true);
}

std::string canonical_query(const query_list& query) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto& [name, value] : query) encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [name, value] : encoded) {
        if (!out.empty()) out.push_back('&');
        out += name;
        out.push_back('=');
        out += value;
    }
    return out;
}

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Trims, and collapses each run of spaces inside the value to one (the SigV4 "Trimall").
std::string trim_all(std::string_view v) {
    std::string out;
    bool in_space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t') {
            in_space = !out.empty();
            continue;
        }
        if (in_space) out.push_back(' ');
        in_space = false;
        out.push_back(c);
    }
    return out;
}

}  // namespace

std::string canonical_request(const request_to_sign& req, std::string* signed_headers_out) {
    // Sorted by lowercase name; a repeated name keeps its values in the order given.
    std::map<std::string, std::string> headers;
    for (const auto& [name, value] : req.headers) {
        auto [it, inserted] = headers.try_emplace(lower(name), trim_all(value));
        if (!inserted) it->second += "," + trim_all(value);
    }
    std::string signed_headers;
    std::string out;
    out.reserve(256 + req.path.size() * 3);
    out += req.method;
    out += '\n';
    out += canonical_path(req.path);
    out += '\n';
    out += canonical_query(req.query);
    out += '\n';
    for (const auto& [name, value] : headers) {
        out += name;
        out += ':';
        out += value;
        out += '\n';
        if (!signed_headers.empty()) signed_headers += ';';
        signed_headers += name;
    }
    out += '\n';
    out += signed_headers;
    out += '\n';
    out += req.payload_hash;
    if (signed_headers_out) *signed_headers_out = std::move(signed_headers);
    return out;
}

std::string string_to_sign(std::string_view amz_datetime, std::string_view region, std::string_view service,
                           std::string_view canonical) {
    if (amz_datetime.size() < 8) throw std::invalid_argument("x-amz-date must look like 20130524T000000Z");
    std::string out = "AWS4-HMAC-SHA256\n";
    out += amz_datetime;
    out += '\n';
    out += amz_datetime.substr(0, 8);
    out += '/';
    out += region;
    out += '/';
    out += service;
    out += "/aws4_request\n";
    out += sha256_hex(canonical);
    return out;
}

std::string signing_key(std::string_view secret_key, std::string_view date, std::string_view region,
                        std::string_view service) {
    std::string k = hmac_sha256("AWS4" + std::string(secret_key), date);
    k = hmac_sha256(k, region);
    k = hmac_sha256(k, service);
    return hmac_sha256(k, "aws4_request");
}

signature_parts sign(const request_to_sign& req, const credentials& creds, std::string_view amz_datetime,
                     std::string_view region, std::string_view service) {
    signature_parts p;
    p.canonical_request = canonical_request(req, &p.signed_headers);
    p.string_to_sign = string_to_sign(amz_datetime, region, service, p.canonical_request);
    std::string key = signing_key(creds.secret_key, amz_datetime.substr(0, 8), region, service);
    p.signature = to_hex(hmac_sha256(key, p.string_to_sign));
    p.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + std::string(amz_datetime.substr(0, 8)) +
                      "/" + std::string(region) + "/" + std::string(service) +
                      "/aws4_request, SignedHeaders=" + p.signed_headers + ", Signature=" + p.signature;
    return p;
}

}  // namespace aq::s3
