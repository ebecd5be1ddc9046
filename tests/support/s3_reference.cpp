#include "s3_reference.hpp"

#include "s3/object_writer.hpp"
#include "s3/sigv4.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace aqt {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::uint64_t MiB = 1 << 20;

// 1 MiB of random bytes, repeated: incompressible enough, and free to produce.
const std::string& block() {
    static const std::string b = [] {
        std::string s(MiB, '\0');
        if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size())) != 1)
            throw std::runtime_error("RAND_bytes failed");
        return s;
    }();
    return b;
}

// Reads the repeated block from `offset`.
std::size_t fill(std::uint64_t& offset, std::uint64_t total, char* buf, std::size_t cap) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(cap, total - offset));
    for (std::size_t done = 0; done < n;) {
        std::size_t at = static_cast<std::size_t>((offset + done) % MiB);
        std::size_t take = std::min(n - done, static_cast<std::size_t>(MiB) - at);
        std::memcpy(buf + done, block().data() + at, take);
        done += take;
    }
    offset += n;
    return n;
}

double mib_per_s(std::uint64_t bytes, clock_type::time_point t0) {
    double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    return static_cast<double>(bytes) / MiB / s;
}

}  // namespace

s3_rate s3_client_put_get(aq::s3::client& c, const std::string& key, std::uint64_t bytes) {
    s3_rate r;
    std::uint64_t offset = 0;
    aq::s3::body_source src;
    src.length = bytes;
    src.read = [&](char* buf, std::size_t cap) { return fill(offset, bytes, buf, cap); };
    src.restart = [&] { offset = 0; };
    auto t0 = clock_type::now();
    c.put_object(key, src);
    r.put_mib_s = mib_per_s(bytes, t0);
    std::uint64_t got = 0;
    t0 = clock_type::now();
    c.get_object(key, [&](std::string_view piece) { got += piece.size(); });
    r.get_mib_s = mib_per_s(bytes, t0);
    if (got != bytes) throw std::runtime_error("GET returned " + std::to_string(got) + " bytes");
    return r;
}

double s3_writer_put(aq::s3::client& c, const std::string& key, std::uint64_t bytes) {
    std::uint64_t offset = 0;
    auto t0 = clock_type::now();
    aq::s3::object_writer w(c, key);
    w.write_from([&](char* buf, std::size_t cap) { return fill(offset, bytes, buf, cap); });
    w.finish();
    return mib_per_s(bytes, t0);
}

void s3_reference_file(const std::string& path, std::uint64_t bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (std::uint64_t done = 0; done < bytes; done += MiB)
        out.write(block().data(), static_cast<std::streamsize>(std::min<std::uint64_t>(MiB, bytes - done)));
    if (!out) throw std::runtime_error("cannot write " + path);
}

s3_rate s3_curl_put_get(const aq::s3::client_config& cfg, const std::string& key, const std::string& file) {
    // curl signs with the key before the first ':' of --user, and Swift's keys hold one: the
    // credentials go in the URL, encoded. It sends no payload hash header, which s3api requires,
    // and it does not encode the path for signing: the key is passed encoded.
    std::string scheme_end = "://";
    auto at = cfg.endpoint.find(scheme_end) + scheme_end.size();
    std::string url = cfg.endpoint.substr(0, at) + aq::s3::uri_encode(cfg.access_key, false) + ":" +
                      aq::s3::uri_encode(cfg.secret_key, false) + "@" + cfg.endpoint.substr(at) + "/" + cfg.bucket +
                      "/" + aq::s3::uri_encode(key, true);
    std::string common = "curl -sf --aws-sigv4 'aws:amz:" + cfg.region + ":s3' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' ";
    std::uint64_t bytes = std::filesystem::file_size(file);
    s3_rate r;
    auto t0 = clock_type::now();
    if (std::system((common + "-o /dev/null -T '" + file + "' '" + url + "'").c_str()) != 0)
        throw std::runtime_error("curl PUT failed");
    r.put_mib_s = mib_per_s(bytes, t0);
    t0 = clock_type::now();
    if (std::system((common + "-o /dev/null '" + url + "'").c_str()) != 0) throw std::runtime_error("curl GET failed");
    r.get_mib_s = mib_per_s(bytes, t0);
    return r;
}

}  // namespace aqt
