// Memory does not grow with object size: a 1 GiB object streamed from a generator through
// object_writer (multipart: parts_in_flight + 1 part buffers) and read back through get_object
// (one 256 KiB block), against the real S3 server of the "s3" fixture. Its own executable, so
// the process's peak RSS (VmHWM, reset between the two through /proc/self/clear_refs) measures
// these transfers and nothing else.
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

// A field of /proc/self/status in bytes: VmHWM (peak resident set) or VmRSS (current).
std::uint64_t status_bytes(std::string_view field) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind(field, 0) == 0 && line.size() > field.size() && line[field.size()] == ':')
            return std::stoull(line.substr(field.size() + 1)) * 1024;  // "VmHWM:  1234 kB"
    throw std::runtime_error("no " + std::string(field) + " in /proc/self/status");
}

// Starts a new peak: VmHWM drops to the current RSS (Linux >= 4.0). Returns that RSS.
std::uint64_t reset_peak() {
    std::ofstream("/proc/self/clear_refs") << "5";
    return status_bytes("VmRSS");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_1_gib_upload_and_download_keep_memory_flat) {
    client_config cfg = aqt::s3_endpoint();  // the defaults: 8 MiB parts, 2 in flight
    client c(cfg);
    byte_pattern source(2024, 1024 * MiB);
    std::string expected = source.sha256_hex();
    c.put_object("warm-up", std::string(64 * 1024, 'w'));  // a connection, allocator arenas
    std::uint64_t before_upload = reset_peak();

    object_writer w(c, "big");
    BOOST_TEST(w.write_from([&](char* b, std::size_t n) { return source.read(b, n); }) == 1024 * MiB);
    w.finish();
    BOOST_TEST(w.parts_sent() == 128);
    std::uint64_t upload_growth = status_bytes("VmHWM") - before_upload;
    std::uint64_t before_download = reset_peak();

    aqt::sha256 h;
    std::uint64_t got = 0;
    get_result r = c.get_object("big", [&](std::string_view piece) {
        h.update(piece);
        got += piece.size();
    });
    std::uint64_t download_growth = status_bytes("VmHWM") - before_download;

    BOOST_TEST(got == 1024 * MiB);
    BOOST_TEST(r.object.size == 1024 * MiB);
    BOOST_TEST(h.hex() == expected);
    BOOST_TEST_MESSAGE("peak RSS growth: upload " << upload_growth / 1024 << " KiB, download "
                                                   << download_growth / 1024 << " KiB");
    // Upload: (parts_in_flight + 1) part buffers (24 MiB) plus I/O blocks and thread stacks in
    // use; download: one 256 KiB block. The bound for a whole store is 64 MiB.
    BOOST_TEST(upload_growth <= (cfg.parts_in_flight + 1) * cfg.part_size + 8 * MiB);
    BOOST_TEST(download_growth <= 8 * MiB);
    c.delete_object("big");
}
