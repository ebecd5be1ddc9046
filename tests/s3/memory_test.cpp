// Memory does not grow with object size: a 1 GiB object streamed from a generator through
// object_writer (multipart, one part buffer) and read back through get_object (one 256 KiB
// block), against the real S3 server of the "s3" fixture. Its own executable, so the process's
// peak RSS (VmHWM) measures these two transfers and nothing else.
#define BOOST_TEST_MODULE s3_memory
#include <boost/test/unit_test.hpp>

#include "byte_pattern.hpp"
#include "s3/client.hpp"
#include "s3/object_writer.hpp"
#include "support/s3.hpp"

#include <fstream>

using namespace aq::s3;
using aqt::byte_pattern;

namespace {

constexpr std::uint64_t MiB = 1 << 20;

// Peak resident set size of this process so far, in bytes.
std::uint64_t peak_rss() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmHWM:  1234 kB"
    throw std::runtime_error("no VmHWM in /proc/self/status");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_1_gib_upload_and_download_keep_memory_flat) {
    client_config cfg = aqt::s3_endpoint();  // part_size 8 MiB, the default
    client c(cfg);
    byte_pattern source(2024, 1024 * MiB);
    std::string expected = source.sha256_hex();
    c.put_object("warm-up", std::string(64 * 1024, 'w'));  // connections, TLS-free buffers, allocator arenas
    std::uint64_t before = peak_rss();

    object_writer w(c, "big");
    BOOST_TEST(w.write_from([&](char* b, std::size_t n) { return source.read(b, n); }) == 1024 * MiB);
    w.finish();
    BOOST_TEST(w.parts_sent() == 128);
    std::uint64_t after_upload = peak_rss();

    aqt::sha256 h;
    std::uint64_t got = 0;
    get_result r = c.get_object("big", [&](std::string_view piece) {
        h.update(piece);
        got += piece.size();
    });
    std::uint64_t after_download = peak_rss();

    BOOST_TEST(got == 1024 * MiB);
    BOOST_TEST(r.object.size == 1024 * MiB);
    BOOST_TEST(h.hex() == expected);
    BOOST_TEST_MESSAGE("peak RSS growth: upload " << (after_upload - before) / 1024 << " KiB, download "
                                                   << (after_download - after_upload) / 1024 << " KiB");
    // One 8 MiB part buffer and 256 KiB I/O blocks; the bound for a whole store is 64 MiB.
    BOOST_TEST(after_upload - before <= 16 * MiB);
    BOOST_TEST(after_download - before <= 16 * MiB);
    c.delete_object("big");
}
