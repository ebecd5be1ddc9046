#include "endpoint.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <stdexcept>

namespace aq::s3 {

endpoint parse_endpoint(std::string_view url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) throw std::invalid_argument("not a URL: " + std::string(url));
    boost::urls::url_view u = *parsed;
    endpoint ep;
    if (u.scheme() == "https") ep.tls = true;
    else if (u.scheme() != "http") throw std::invalid_argument("the endpoint must be http:// or https://");
    if (u.has_userinfo()) throw std::invalid_argument("the endpoint must not hold credentials (use the key settings)");
    if (u.has_query() || u.has_fragment()) throw std::invalid_argument("the endpoint must not have a query or fragment");
    if (u.encoded_host().empty()) throw std::invalid_argument("the endpoint has no host");
    if (u.host_type() == boost::urls::host_type::ipv6) ep.host = u.host_ipv6_address().to_string();
    else ep.host = u.host_address();
    if (u.has_port()) {
        if (u.port_number() == 0) throw std::invalid_argument("the endpoint's port is not a port number");
        ep.port = std::to_string(u.port_number());
    } else {
        ep.port = ep.tls ? "443" : "80";
    }
    ep.authority = u.encoded_host_and_port();
    std::string path = u.path();  // decoded: it is re-encoded with every request path
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (!path.empty() && path.front() != '/') path.insert(path.begin(), '/');
    ep.base_path = std::move(path);
    return ep;
}

endpoint bucket_endpoint(const endpoint& ep, addressing style, std::string_view bucket) {
    if (style == addressing::path) return ep;
    auto is_ip = boost::urls::parse_authority(ep.authority);
    if (is_ip && is_ip->host_type() != boost::urls::host_type::name)
        throw std::invalid_argument("virtual-host addressing needs a host name endpoint, not an IP address");
    endpoint out = ep;
    out.host = std::string(bucket) + "." + ep.host;
    out.authority = std::string(bucket) + "." + ep.authority;
    return out;
}

std::string object_path(const endpoint& ep, addressing style, std::string_view bucket, std::string_view key) {
    std::string path = ep.base_path;
    if (style == addressing::path) {
        path += '/';
        path += bucket;
        if (!key.empty()) path += '/';
    } else {
        path += '/';
    }
    path += key;
    return path;
}

}  // namespace aq::s3
