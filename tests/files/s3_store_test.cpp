// The s3 content store itself (plugins/files/s3_store.hpp) against the real Swift + s3api server
// of the CTest fixture "s3": its reader's ring buffer and resumption, and its writer, below the
// Files API (files_api_postgres_s3_test runs the API on it).
#define BOOST_TEST_MODULE files_s3_store
#include <boost/test/unit_test.hpp>

#include "s3_store.hpp"

#include "../s3/byte_pattern.hpp"
#include "support/digest.hpp"
#include "support/s3.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
constexpr std::uint64_t MiB = 1 << 20;

aq::files::s3_settings settings_of(const aq::s3::client_config& c) {
    aq::files::s3_settings s;
    s.endpoint = c.endpoint;
    s.bucket = c.bucket;
    s.region = c.region;
    s.path_style = true;
    s.access_key = c.access_key;
    s.secret_key = c.secret_key;
    s.part_bytes = 5 * MiB;  // the smallest S3 allows: parts without writing much
    return s;
}

struct store_fixture {
    aq::files::s3_store store{settings_of(aqt::s3_endpoint()), nullptr};

    // Stores `content` under `key` through the store's writer.
    void put(const std::string& key, std::string_view content) {
        auto w = store.create(key, content.size(), [] {});
        w->write(content);
        w->seal();
    }
    std::unique_ptr<aq::files::content_reader> open(const std::string& key, std::uint64_t offset, std::uint64_t length) {
        aq::files::file_record f;
        f.content_key = key;
        return store.open(f, offset, length);
    }
    // Stores `content` under `key` and opens a reader of all of it that has handed out its first
    // 10 bytes (into `got`): its GET is under way.
    std::unique_ptr<aq::files::content_reader> started(const std::string& key, const std::string& content,
                                                       std::string& got) {
        put(key, content);
        auto r = open(key, 0, content.size());
        got.assign(10, '\0');
        BOOST_TEST_REQUIRE(r->read(got) == 10u);
        return r;
    }
    std::uint64_t requests() const { return const_cast<aq::files::s3_store&>(store).client().stats().requests; }
};

// Reads a reader to its end with reads of the given sizes in turn.
std::string read_all(aq::files::content_reader& r, const std::vector<std::size_t>& sizes) {
    std::string out, buf;
    for (std::size_t i = 0;; ++i) {
        buf.resize(sizes[i % sizes.size()]);
        std::size_t n = r.read(buf);
        if (n == 0) return out;
        out.append(buf, 0, n);
    }
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(reader, store_fixture)

BOOST_AUTO_TEST_CASE(reads_of_any_size_return_the_exact_bytes_whole_and_in_ranges) {
    // Past the reader's 1 MiB ring several times, so the ring wraps at odd offsets.
    const std::string content = aqt::byte_pattern(5, 3 * MiB + 12345).all();
    put("ring", content);
    const std::vector<std::vector<std::size_t>> patterns{
        {1 << 20}, {1}, {7, 65537, 4096, 3}, {(1 << 20) + 3}, {300000, 1}};
    for (const auto& sizes : patterns) {
        BOOST_TEST_CONTEXT("reads of " << sizes.front() << " bytes first") {
            auto r = open("ring", 0, content.size());
            std::string got = read_all(*r, sizes);
            BOOST_TEST(got.size() == content.size());
            BOOST_TEST((got == content));
        }
    }
    // A range that starts just before the first MiB and crosses two more.
    auto r = open("ring", MiB - 5, 2 * MiB + 10);
    std::string got = read_all(*r, {65536, 1000});
    BOOST_TEST((got == content.substr(MiB - 5, 2 * MiB + 10)));
    // The last byte alone.
    r = open("ring", content.size() - 1, 1);
    BOOST_TEST((read_all(*r, {4096}) == content.substr(content.size() - 1)));
}

BOOST_AUTO_TEST_CASE(a_reader_that_stops_taking_bytes_ends_its_get_and_resumes_where_it_stopped) {
    const std::string content = aqt::byte_pattern(6, 4 * MiB + 1).all();
    std::string got;
    auto r = started("slow", content, got);
    const std::uint64_t before = requests();
    // Six times the GET's stall limit (1 s): it fills the ring, waits, and ends, also when a
    // loaded machine is slow to fill it.
    std::this_thread::sleep_for(6s);
    got += read_all(*r, {100000});
    BOOST_TEST((got == content));
    // One more GET: the ranged one that resumed after the ring's bytes.
    BOOST_TEST(requests() - before == 1u);
}

BOOST_AUTO_TEST_CASE(content_removed_while_its_reader_paused_is_gone_after_the_buffered_bytes) {
    const std::string content = aqt::byte_pattern(7, 4 * MiB).all();
    std::string got;
    auto r = started("removed", content, got);
    std::this_thread::sleep_for(6s);  // the GET ends with the ring full (as above)
    store.remove("removed", false);
    std::string buf(65536, '\0');
    bool gone = false;
    try {
        for (;;) {
            std::size_t n = r->read(buf);
            BOOST_TEST_REQUIRE(n > 0u);
            got.append(buf, 0, n);
        }
    } catch (const aq::files::content_gone&) {
        gone = true;
    }
    BOOST_TEST(gone);
    // What the ring held came out first, byte exact: a prefix, short of the whole.
    BOOST_TEST(got.size() < content.size());
    BOOST_TEST(got.size() >= 10u);
    BOOST_TEST((got == content.substr(0, got.size())));
}

BOOST_AUTO_TEST_CASE(a_reader_destroyed_mid_download_stops_its_get) {
    const std::string content = aqt::byte_pattern(8, 4 * MiB).all();
    std::string got;
    auto r = started("dropped", content, got);
    r.reset();  // joins the GET's thread: returns, with nothing left running
    r = open("dropped", 5, 20);
    BOOST_TEST((read_all(*r, {7}) == content.substr(5, 20)));
}

BOOST_AUTO_TEST_SUITE_END()
