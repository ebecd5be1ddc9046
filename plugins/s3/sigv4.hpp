// AWS Signature Version 4 (header form), on OpenSSL: SHA-256 with EVP, HMAC-SHA256.
//
// The four published steps, each a function so tests can pin every intermediate against AWS's
// own vectors:
//   canonical_request -> string_to_sign -> signing_key -> signature -> authorization header.
//
// Encoding follows what S3 expects (and what the SigV4 test suite shows for single-encoded
// services): the path is encoded once, segment by segment, keeping '/'; no dot-segment removal,
// no double encoding. The query is encoded with RFC 3986 (unreserved bytes A-Z a-z 0-9 - _ . ~
// kept, everything else %XX with uppercase hex), sorted by encoded name then encoded value, and
// written with '=' even for an empty value (`?uploads` signs as `uploads=`). The same encoded
// path and query are what goes on the wire, so the server canonicalises exactly what was signed.
//
// Header names are lowercased, values trimmed with inner runs of spaces collapsed, repeated names
// joined with ','. Every header handed to the signer is signed: the caller decides the set (the
// S3 client signs host with its port, x-amz-content-sha256, x-amz-date and any other x-amz-*).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aq::s3 {

using header_list = std::vector<std::pair<std::string, std::string>>;
using query_list = std::vector<std::pair<std::string, std::string>>;  // raw (decoded) names and values

// The payload hash S3 accepts for a body that is not hashed before sending.
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";

std::string sha256_hex(std::string_view data);
// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string to_hex(std::string_view bytes);

// RFC 3986 percent-encoding of every byte outside the unreserved set; '/' kept when asked.
std::string uri_encode(std::string_view raw, bool keep_slash);

// "20130524T000000Z" (x-amz-date) for a UTC time.
std::string amz_date(std::chrono::system_clock::time_point t);

struct credentials {
    std::string access_key;
    std::string secret_key;
    std::string session_token;  // temporary credentials (STS); sent and signed as x-amz-security-token
};

struct request_to_sign {
    std::string method;            // "GET"
    std::string path;              // raw path, e.g. "/bucket/a b+c"; encoded here, once
    query_list query;              // raw names and values, any order
    header_list headers;           // every header to sign (host and x-amz-date included)
    std::string payload_hash;      // hex SHA-256 of the body, or unsigned_payload
};

// The canonical forms (exposed for the tests and for the wire: the client sends exactly these).
std::string canonical_path(std::string_view raw_path);
std::string canonical_query(const query_list& query);

struct signature_parts {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signed_headers;   // "host;x-amz-content-sha256;x-amz-date"
    std::string signature;        // lowercase hex
    std::string authorization;    // the Authorization header's value
};

std::string canonical_request(const request_to_sign& req, std::string* signed_headers = nullptr);
// `amz_datetime` is the x-amz-date value; the scope's date is its first 8 characters.
std::string string_to_sign(std::string_view amz_datetime, std::string_view region, std::string_view service,
                           std::string_view canonical_request);
// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"), raw.
std::string signing_key(std::string_view secret_key, std::string_view date, std::string_view region,
                        std::string_view service);

// All steps at once. `amz_datetime` must equal the x-amz-date header in req.headers.
signature_parts sign(const request_to_sign& req, const credentials& creds, std::string_view amz_datetime,
                     std::string_view region, std::string_view service);

}  // namespace aq::s3
