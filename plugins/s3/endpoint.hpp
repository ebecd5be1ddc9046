// Where an S3 request goes: the endpoint URL from the config, and the host and path of a bucket
// or object under path-style or virtual-host addressing.
//
//   path style    http://127.0.0.1:8080/bucket/key     (Swift, MinIO, Ceph, any IP endpoint)
//   virtual host  https://bucket.s3.eu-west-1.amazonaws.com/key   (AWS's default)
//
// The Host header keeps the endpoint's authority as written (port included when the URL has
// one), since SigV4 signs it and the server compares it with what it received. An endpoint may
// carry a base path ("http://gw/s3"), which prefixes every request path.
#pragma once

#include <string>
#include <string_view>

namespace aq::s3 {

enum class addressing { path, virtual_host };

struct endpoint {
    bool tls = false;
    std::string host;       // for connecting and for TLS name checks: "127.0.0.1", "::1", "s3.example.com"
    std::string port;       // "443", "80", or the URL's
    std::string authority;  // host[:port] as written in the URL (IPv6 in brackets)
    std::string base_path;  // "" or "/prefix" (no trailing '/')
};

// Parses "http(s)://host[:port][/base]". Throws std::invalid_argument with the reason for
// anything else (other schemes, user info, query, fragment, no host).
endpoint parse_endpoint(std::string_view url);

// The endpoint requests about `bucket` go to: the endpoint itself (path style), or the bucket's
// own host name, bucket.host (virtual host; throws std::invalid_argument for an IP endpoint).
endpoint bucket_endpoint(const endpoint& ep, addressing style, std::string_view bucket);

// The raw (not encoded) request path of `key` in `bucket`: "/bucket/a b" (path style) or "/a b"
// (virtual host); an empty key gives the bucket itself ("/bucket" or "/").
std::string object_path(const endpoint& ep, addressing style, std::string_view bucket, std::string_view key);

}  // namespace aq::s3
