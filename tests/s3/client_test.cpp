// The S3 client against a real S3-compatible server: OpenStack Swift with s3api, started once per
// ctest run by the "s3" fixture (tests/support/s3.sh); each test gets a fresh bucket. Faults are
// injected by a TCP proxy in front of the real server (fault_proxy.hpp), never by a mock.
#define BOOST_TEST_MODULE s3_client
#include <boost/test/unit_test.hpp>

#include "byte_pattern.hpp"
#include "fault_proxy.hpp"
#include "tls_proxy.hpp"
#include "s3/client.hpp"
#include "s3/object_writer.hpp"
#include "support/s3.hpp"

#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

using namespace aq::s3;
using aqt::byte_pattern;

namespace {

constexpr std::uint64_t MiB = 1 << 20;

std::string md5_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(digits[md[i] >> 4]);
        out.push_back(digits[md[i] & 15]);
    }
    return out;
}

body_source source_of(byte_pattern& p, bool can_restart) {
    body_source s;
    s.length = p.length();
    s.read = [&p](char* buf, std::size_t cap) { return p.read(buf, cap); };
    if (can_restart) s.restart = [&p] { p.restart(); };
    return s;
}

struct fetched {
    std::string sha256;
    std::uint64_t bytes = 0;
    get_result result;
};

fetched get_hashed(client& c, std::string_view key, std::optional<byte_range> range = {}) {
    aqt::sha256 h;
    fetched f;
    f.result = c.get_object(key, [&](std::string_view piece) {
        h.update(piece);
        f.bytes += piece.size();
    }, range);
    f.sha256 = h.hex();
    return f;
}

std::string get_string(client& c, std::string_view key, std::optional<byte_range> range = {}) {
    std::string out;
    c.get_object(key, [&](std::string_view piece) { out.append(piece); }, range);
    return out;
}

// The error a call throws; fails the test when it throws none.
template <class Fn>
error error_of(Fn&& fn) {
    try {
        fn();
    } catch (const error& e) {
        return e;
    }
    BOOST_FAIL("expected an aq::s3::error");
    throw std::logic_error("unreachable");
}

// A config that goes through the fault proxy and retries quickly.
client_config through(const client_config& real, const aqt::fault_proxy& proxy) {
    client_config cfg = real;
    cfg.endpoint = "http://127.0.0.1:" + std::to_string(proxy.port());
    cfg.retry = retry_policy{4, std::chrono::milliseconds(10), std::chrono::milliseconds(40)};
    return cfg;
}

unsigned short port_of(const client_config& cfg) {
    return static_cast<unsigned short>(std::stoi(cfg.endpoint.substr(cfg.endpoint.rfind(':') + 1)));
}

// The real server behind a fault proxy; `cfg` goes through the proxy and retries quickly.
struct proxied {
    client_config real = aqt::s3_endpoint();
    aqt::fault_proxy proxy{port_of(real)};
    client_config cfg = through(real, proxy);
};

}  // namespace

BOOST_AUTO_TEST_SUITE(objects)

BOOST_AUTO_TEST_CASE(put_and_get_are_byte_exact_from_empty_to_100_mib) {
    client c(aqt::s3_endpoint());
    // In memory (signed with the body's SHA-256) for the small ones.
    for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, 5 * MiB + 1}) {
        BOOST_TEST_CONTEXT("in memory, " << size << " bytes") {
            std::string data = byte_pattern(size + 7, size).all();
            std::string key = "mem/" + std::to_string(size);
            std::string etag = c.put_object(key, data);
            BOOST_TEST(etag == "\"" + md5_hex(data) + "\"");
            BOOST_TEST(get_string(c, key) == data);
            object_info info = c.head_object(key);
            BOOST_TEST(info.size == size);
            BOOST_TEST(info.etag == etag);
        }
    }
    // Streamed (UNSIGNED-PAYLOAD, Expect: 100-continue) for the large ones.
    for (std::uint64_t size : {5 * MiB + 1, 100 * MiB}) {
        BOOST_TEST_CONTEXT("streamed, " << size << " bytes") {
            byte_pattern p(size, size);
            std::string key = "stream/" + std::to_string(size);
            c.put_object(key, source_of(p, false));
            BOOST_TEST(p.produced() == size);
            fetched f = get_hashed(c, key);
            BOOST_TEST(f.bytes == size);
            BOOST_TEST(f.sha256 == p.sha256_hex());
            BOOST_TEST(f.result.object.size == size);
            BOOST_TEST(f.result.first == 0u);
            BOOST_TEST(f.result.length == size);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_source_that_ends_early_fails_the_put_and_stores_nothing) {
    client c(aqt::s3_endpoint());
    byte_pattern p(4, 2 * MiB);
    body_source src = source_of(p, true);
    src.length = 3 * MiB;  // claims more than it has
    try {
        c.put_object("short", src);
        BOOST_ERROR("a short source was accepted");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()) == "the request body source ended after 2097152 of 3145728 bytes");
    }
    BOOST_TEST(error_of([&] { c.head_object("short"); }).not_found());
    // The connection it broke is not reused: the next request works.
    c.put_object("after", "ok");
    BOOST_TEST(get_string(c, "after") == "ok");
}

BOOST_AUTO_TEST_CASE(ranged_get_returns_exactly_the_range) {
    client c(aqt::s3_endpoint());
    std::string data = byte_pattern(3, 1000).all();
    c.put_object("r", data);
    BOOST_TEST(get_string(c, "r", byte_range{10, 20}) == data.substr(10, 11));
    get_result tail = c.get_object("r", [](std::string_view) {}, byte_range{990, std::nullopt});
    BOOST_TEST(tail.first == 990u);
    BOOST_TEST(tail.length == 10u);
    BOOST_TEST(tail.object.size == 1000u);
    BOOST_TEST(get_string(c, "r", byte_range{990, std::nullopt}) == data.substr(990));
    BOOST_TEST(get_string(c, "r", byte_range{998, 5000}) == data.substr(998));  // clipped at the end
    BOOST_TEST(get_string(c, "r", byte_range{0, 0}) == data.substr(0, 1));
    error past = error_of([&] { get_string(c, "r", byte_range{1000, 1005}); });
    BOOST_TEST(past.status() == 416);
    BOOST_TEST(past.code() == "InvalidRange");
    BOOST_TEST(!past.retryable());
}

BOOST_AUTO_TEST_CASE(ranged_get_of_a_large_object_streams_the_middle) {
    client c(aqt::s3_endpoint());
    byte_pattern p(11, 12 * MiB);
    std::string all = p.all();
    c.put_object("big", all);
    fetched f = get_hashed(c, "big", byte_range{3 * MiB + 5, 9 * MiB});
    BOOST_TEST(f.bytes == 6 * MiB - 4);
    BOOST_TEST(f.sha256 == aqt::sha256_hex(std::string_view(all).substr(3 * MiB + 5, 6 * MiB - 4)));
}

BOOST_AUTO_TEST_CASE(head_reports_size_and_etag_and_not_found) {
    client c(aqt::s3_endpoint());
    c.put_object("h", "hello");
    object_info info = c.head_object("h");
    BOOST_TEST(info.size == 5u);
    BOOST_TEST(info.etag == "\"" + md5_hex("hello") + "\"");
    BOOST_TEST(!info.last_modified.empty());
    error missing = error_of([&] { c.head_object("absent"); });
    BOOST_TEST(missing.not_found());
    BOOST_TEST(missing.status() == 404);
    BOOST_TEST(missing.code() == "NotFound");  // a HEAD answer has no body to name the code
}

BOOST_AUTO_TEST_CASE(delete_then_get_is_no_such_key_and_delete_is_idempotent) {
    client c(aqt::s3_endpoint());
    c.put_object("d", "x");
    c.delete_object("d");
    error gone = error_of([&] { get_string(c, "d"); });
    BOOST_TEST(gone.not_found());
    BOOST_TEST(gone.status() == 404);
    BOOST_TEST(gone.code() == "NoSuchKey");
    BOOST_TEST(!gone.retryable());
    BOOST_CHECK_NO_THROW(c.delete_object("d"));
    BOOST_CHECK_NO_THROW(c.delete_object("never-existed"));
}

BOOST_AUTO_TEST_CASE(a_missing_bucket_is_no_such_bucket) {
    client c(aqt::s3_endpoint(false));
    error e = error_of([&] { get_string(c, "k"); });
    BOOST_TEST(e.not_found());
    BOOST_TEST(e.code() == "NoSuchBucket");
}

BOOST_AUTO_TEST_CASE(creating_an_owned_bucket_again_is_fine) {
    client c(aqt::s3_endpoint());
    BOOST_CHECK_NO_THROW(c.create_bucket());
}

BOOST_AUTO_TEST_CASE(keys_with_space_plus_tilde_percent_and_non_ascii_round_trip) {
    client c(aqt::s3_endpoint());
    const std::vector<std::string> keys = {
        "a b", "a+b", "a~b", "\xC3\xBC", "dir/x y+z~\xC3\xBC.txt", "100%", "q?x=1&y=2", "h#frag", " lead and trail ",
        "a//b", "\xE6\x97\xA5\xE6\x9C\xAC/\xF0\x9F\x98\x80"};
    for (const auto& key : keys) {
        BOOST_TEST_CONTEXT("key \"" << key << "\"") {
            c.put_object(key, "v:" + key);
            BOOST_TEST(get_string(c, key) == "v:" + key);
            BOOST_TEST(c.head_object(key).size == key.size() + 2);
        }
    }
    std::vector<listed_object> listed = c.list_all_objects("");
    std::vector<std::string> names;
    for (const auto& o : listed) names.push_back(o.key);
    std::vector<std::string> expected = keys;
    std::sort(expected.begin(), expected.end());
    BOOST_TEST(names == expected, boost::test_tools::per_element());
    for (const auto& key : keys) c.delete_object(key);
    BOOST_TEST(c.list_all_objects("").empty());
}

BOOST_AUTO_TEST_CASE(list_with_prefix_pages_in_key_order) {
    client c(aqt::s3_endpoint());
    for (int i = 0; i < 7; ++i) c.put_object("p/" + std::to_string(i), std::string(static_cast<std::size_t>(i), 'x'));
    c.put_object("q/0", "other");
    c.put_object("p", "no slash");

    std::vector<std::size_t> page_sizes;
    std::vector<listed_object> seen;
    std::string token;
    do {
        object_page page = c.list_objects("p/", token, 3);
        page_sizes.push_back(page.objects.size());
        for (auto& o : page.objects) seen.push_back(std::move(o));
        token = page.next_continuation_token;
    } while (!token.empty());
    BOOST_TEST(page_sizes == (std::vector<std::size_t>{3, 3, 1}), boost::test_tools::per_element());
    BOOST_REQUIRE_EQUAL(seen.size(), 7u);
    for (int i = 0; i < 7; ++i) {
        BOOST_TEST(seen[static_cast<std::size_t>(i)].key == "p/" + std::to_string(i));
        BOOST_TEST(seen[static_cast<std::size_t>(i)].size == static_cast<std::uint64_t>(i));
        BOOST_TEST(seen[static_cast<std::size_t>(i)].etag == "\"" + md5_hex(std::string(static_cast<std::size_t>(i), 'x')) + "\"");
    }
    BOOST_TEST(c.list_all_objects("p/").size() == 7u);
    BOOST_TEST(c.list_all_objects("").size() == 9u);
    BOOST_TEST(c.list_all_objects("zzz").empty());
}

BOOST_AUTO_TEST_CASE(one_keep_alive_connection_serves_sequential_requests) {
    client c(aqt::s3_endpoint());
    for (int i = 0; i < 20; ++i) c.put_object("k" + std::to_string(i), "v");
    for (int i = 0; i < 20; ++i) BOOST_TEST(get_string(c, "k" + std::to_string(i)) == "v");
    BOOST_TEST(c.stats().connections == 1u);
    BOOST_TEST(c.stats().requests == 40u);
    BOOST_TEST(c.stats().retries == 0u);
}

BOOST_AUTO_TEST_CASE(an_idle_connection_older_than_idle_keepalive_is_not_reused) {
    client_config cfg = aqt::s3_endpoint();
    cfg.idle_keepalive = std::chrono::milliseconds(2000);  // a loaded machine's pause between two requests
    client c(cfg);
    c.put_object("k", "v");
    BOOST_TEST(get_string(c, "k") == "v");
    BOOST_TEST(c.stats().connections == 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    BOOST_TEST(get_string(c, "k") == "v");
    BOOST_TEST(c.stats().connections == 2u);
}

BOOST_AUTO_TEST_CASE(threads_share_one_client) {
    client c(aqt::s3_endpoint());
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 8; ++i) {
                std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
                std::string data = byte_pattern(static_cast<std::uint64_t>(t * 100 + i), 70000).all();
                try {
                    c.put_object(key, data);
                    if (get_string(c, key) == data) ++good;
                } catch (const std::exception& e) {
                    BOOST_TEST_MESSAGE("thread " << t << ": " << e.what());
                }
            }
        });
    for (auto& th : threads) th.join();
    BOOST_TEST(good.load() == 48);
    BOOST_TEST(c.stats().connections <= 6u);  // each thread needs at most one at a time
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(multipart)

BOOST_AUTO_TEST_CASE(three_parts_with_a_short_last_one_are_byte_exact) {
    client c(aqt::s3_endpoint());
    byte_pattern p(42, 10 * MiB + 12345);
    std::string part1(5 * MiB, '\0'), part3(12345, '\0');
    p.read(part1.data(), part1.size());

    std::string id = c.create_multipart_upload("mp/obj");
    std::vector<completed_part> parts;
    parts.push_back({1, c.upload_part("mp/obj", id, 1, part1)});  // from a buffer, signed
    // Part 2 streamed from the pattern itself: exactly the next 5 MiB.
    body_source two;
    two.length = 5 * MiB;
    two.read = [&](char* buf, std::size_t cap) { return p.read(buf, cap); };
    parts.push_back({2, c.upload_part("mp/obj", id, 2, two)});
    p.read(part3.data(), part3.size());
    parts.push_back({3, c.upload_part("mp/obj", id, 3, part3)});
    BOOST_TEST(parts[0].etag == "\"" + md5_hex(part1) + "\"");
    BOOST_TEST(parts[2].etag == "\"" + md5_hex(part3) + "\"");

    std::string etag = c.complete_multipart_upload("mp/obj", id, parts);
    BOOST_TEST(etag == multipart_etag(parts));
    BOOST_TEST(etag.size() > 4u);
    BOOST_TEST(etag.substr(etag.size() - 3) == "-3\"");

    fetched f = get_hashed(c, "mp/obj");
    BOOST_TEST(f.bytes == 10 * MiB + 12345);
    BOOST_TEST(f.sha256 == p.sha256_hex());
    BOOST_TEST(c.head_object("mp/obj").size == 10 * MiB + 12345);
    BOOST_TEST(c.list_multipart_uploads("mp/").uploads.empty());
}

BOOST_AUTO_TEST_CASE(abort_leaves_nothing) {
    client c(aqt::s3_endpoint());
    std::string id = c.create_multipart_upload("ab/obj");
    c.upload_part("ab/obj", id, 1, std::string(5 * MiB, 'a'));
    upload_page pending = c.list_multipart_uploads("ab/");
    BOOST_REQUIRE_EQUAL(pending.uploads.size(), 1u);  // the listing does see unfinished uploads
    BOOST_TEST(pending.uploads[0].key == "ab/obj");
    BOOST_TEST(pending.uploads[0].upload_id == id);

    c.abort_multipart_upload("ab/obj", id);
    BOOST_TEST(c.list_multipart_uploads("ab/").uploads.empty());
    BOOST_TEST(c.list_all_objects("").empty());
    error e = error_of([&] { c.upload_part("ab/obj", id, 2, "late"); });
    BOOST_TEST(e.code() == "NoSuchUpload");
    BOOST_TEST(e.not_found());
    BOOST_CHECK_NO_THROW(c.abort_multipart_upload("ab/obj", id));  // aborting again is fine
}

BOOST_AUTO_TEST_CASE(a_part_below_5_mib_that_is_not_last_is_refused_at_completion) {
    client c(aqt::s3_endpoint());
    std::string id = c.create_multipart_upload("small/obj");
    std::vector<completed_part> parts{{1, c.upload_part("small/obj", id, 1, std::string(1000, 'a'))},
                                      {2, c.upload_part("small/obj", id, 2, std::string(1000, 'b'))}};
    error e = error_of([&] { c.complete_multipart_upload("small/obj", id, parts); });
    BOOST_TEST(e.code() == "EntityTooSmall");
    BOOST_TEST(!e.retryable());
    c.abort_multipart_upload("small/obj", id);
    BOOST_TEST(c.list_all_objects("").empty());
}

BOOST_AUTO_TEST_CASE(object_writer_uses_one_put_up_to_a_part_and_multipart_beyond) {
    client_config cfg = aqt::s3_endpoint();
    cfg.part_size = 5 * MiB;
    client c(cfg);
    for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1000}, 5 * MiB, 5 * MiB + 1, 12 * MiB + 3}) {
        BOOST_TEST_CONTEXT(size << " bytes") {
            byte_pattern p(size + 1, size);
            std::string all = p.all();
            object_writer w(c, "w/" + std::to_string(size));
            // Written in uneven pieces, as an upload's body arrives.
            for (std::size_t off = 0; off < all.size();) {
                std::size_t n = std::min<std::size_t>(all.size() - off, 77777 + off % 1000);
                w.write(std::string_view(all).substr(off, n));
                off += n;
            }
            std::string etag = w.finish();
            BOOST_TEST((w.current() == object_writer::state::finished));
            int expected_parts = size <= 5 * MiB ? 0 : static_cast<int>((size + 5 * MiB - 1) / (5 * MiB));
            BOOST_TEST(w.parts_sent() == expected_parts);
            BOOST_TEST(get_string(c, "w/" + std::to_string(size)) == all);
            if (expected_parts == 0) BOOST_TEST(etag == "\"" + md5_hex(all) + "\"");
        }
    }
    BOOST_TEST(c.list_multipart_uploads("w/").uploads.empty());
}

BOOST_AUTO_TEST_CASE(object_writer_streams_from_a_source_and_aborts_when_dropped) {
    client_config cfg = aqt::s3_endpoint();
    cfg.part_size = 5 * MiB;
    client c(cfg);
    {
        byte_pattern p(9, 11 * MiB);
        object_writer w(c, "src");
        BOOST_TEST(w.write_from([&](char* b, std::size_t n) { return p.read(b, n); }) == 11 * MiB);
        w.finish();
        BOOST_TEST(w.parts_sent() == 3);
        BOOST_TEST(get_hashed(c, "src").sha256 == p.sha256_hex());
    }
    {
        object_writer w(c, "dropped");
        w.write(std::string(6 * MiB, 'd'));  // a part is sent: a multipart upload exists
        BOOST_TEST((w.current() == object_writer::state::uploading));
        BOOST_TEST(c.list_multipart_uploads("dropped").uploads.size() == 1u);
    }  // destroyed unfinished
    BOOST_TEST(c.list_multipart_uploads("dropped").uploads.empty());
    BOOST_TEST(error_of([&] { c.head_object("dropped"); }).not_found());
}

BOOST_AUTO_TEST_CASE(swift_takes_a_chunked_put_and_the_probe_leaves_nothing) {
    client c(aqt::s3_endpoint());
    BOOST_TEST(c.takes_chunked_puts("probe/1"));
    BOOST_TEST(error_of([&] { c.head_object("probe/1"); }).not_found());
    BOOST_TEST(c.list_objects("probe/").objects.empty());
}

BOOST_AUTO_TEST_CASE(a_chunked_put_is_byte_exact_and_its_etag_is_the_md5) {
    client c(aqt::s3_endpoint());
    for (std::uint64_t size : {std::uint64_t{1}, std::uint64_t{256 * 1024 + 1}, 20 * MiB + 7}) {
        BOOST_TEST_CONTEXT(size << " bytes") {
            byte_pattern p(3, size);
            body_source s = source_of(p, false);
            s.chunked = true;
            s.length = 0;  // unknown: read until it gives 0
            const std::string key = "chunked/" + std::to_string(size);
            std::string etag = c.put_object(key, s);
            BOOST_TEST(c.head_object(key).size == size);
            fetched f = get_hashed(c, key);
            BOOST_TEST(f.bytes == size);
            BOOST_TEST(f.sha256 == p.sha256_hex());
            BOOST_TEST(etag == "\"" + md5_hex(p.all()) + "\"");
        }
    }
}

BOOST_AUTO_TEST_CASE(a_streamed_object_writer_uses_one_put_whatever_the_size) {
    client_config cfg = aqt::s3_endpoint();
    cfg.part_size = 5 * MiB;
    client c(cfg);
    for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1000}, 5 * MiB, 5 * MiB + 1, 17 * MiB + 3}) {
        BOOST_TEST_CONTEXT(size << " bytes") {
            byte_pattern p(size + 2, size);
            std::string all = p.all();
            const std::string key = "s/" + std::to_string(size);
            object_writer w(c, key, large_objects::streamed);
            for (std::size_t off = 0; off < all.size();) {
                std::size_t n = std::min<std::size_t>(all.size() - off, 77777 + off % 1000);
                w.write(std::string_view(all).substr(off, n));
                off += n;
                if (off > 5 * MiB) BOOST_TEST((w.current() == object_writer::state::streaming));
            }
            std::string etag = w.finish();
            BOOST_TEST((w.current() == object_writer::state::finished));
            BOOST_TEST(w.parts_sent() == 0);
            BOOST_TEST(w.size() == size);
            BOOST_TEST(get_string(c, key) == all);
            // One PUT, whatever the size: the ETag is the content's MD5, not a multipart one.
            BOOST_TEST(etag == "\"" + md5_hex(all) + "\"");
        }
    }
    {
        byte_pattern p(12, 11 * MiB);
        const std::string md5 = md5_hex(byte_pattern(12, 11 * MiB).all());
        object_writer w(c, "s/src", large_objects::streamed);
        BOOST_TEST(w.write_from([&](char* b, std::size_t n) { return p.read(b, n); }) == 11 * MiB);
        BOOST_TEST(w.finish() == "\"" + md5 + "\"");
        BOOST_TEST(get_hashed(c, "s/src").sha256 == p.sha256_hex());
    }
    BOOST_TEST(c.list_multipart_uploads("s/").uploads.empty());
}

BOOST_AUTO_TEST_CASE(a_streamed_object_writer_dropped_or_aborted_mid_put_stores_nothing) {
    client_config cfg = aqt::s3_endpoint();
    cfg.part_size = 5 * MiB;
    client c(cfg);
    {
        object_writer w(c, "dropped", large_objects::streamed);
        w.write(std::string(6 * MiB, 'd'));  // past one part: the PUT is under way
        w.write(std::string(3 * MiB, 'e'));
        BOOST_TEST((w.current() == object_writer::state::streaming));
    }  // destroyed unfinished: the body ends without its last chunk
    {
        object_writer w(c, "aborted", large_objects::streamed);
        w.write(std::string(7 * MiB, 'a'));
        w.abort();
        BOOST_TEST((w.current() == object_writer::state::aborted));
        BOOST_CHECK_THROW(w.write("more"), std::logic_error);
    }
    for (const char* key : {"dropped", "aborted"}) {
        BOOST_TEST_CONTEXT(key) {
            BOOST_TEST(error_of([&] { c.head_object(key); }).not_found());
            BOOST_TEST(c.list_objects(key).objects.empty());
            BOOST_TEST(c.list_multipart_uploads(key).uploads.empty());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(failures)

BOOST_FIXTURE_TEST_CASE(a_server_that_refuses_chunked_puts_is_told_apart_by_the_probe_in_one_request, proxied) {
    // What AWS S3 answers a PUT with Transfer-Encoding: chunked.
    const std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented</Code>"
                            "<Message>A header you provided implies functionality that is not implemented</Message>"
                            "<Header>Transfer-Encoding</Header><RequestId>R1</RequestId></Error>";
    proxy.answer_next(1, "HTTP/1.1 501 Not Implemented\r\nContent-Type: application/xml\r\nContent-Length: " +
                             std::to_string(xml.size()) + "\r\n\r\n" + xml);
    client c(cfg);
    BOOST_TEST(!c.takes_chunked_puts("probe/2"));
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(c.stats().requests == 1u);  // 501 is not retried
    BOOST_TEST(c.stats().retries == 0u);
    BOOST_TEST(error_of([&] { c.head_object("probe/2"); }).not_found());
}

BOOST_FIXTURE_TEST_CASE(slow_down_before_a_streamed_puts_body_is_retried, proxied) {
    cfg.part_size = 5 * MiB;
    client c(cfg);
    proxy.answer_next(2, aqt::slow_down_response());  // answered before 100 Continue: nothing sent
    const std::string data = byte_pattern(21, 9 * MiB).all();
    object_writer w(c, "sd", large_objects::streamed);
    w.write(data);
    BOOST_TEST(w.finish() == "\"" + md5_hex(data) + "\"");
    BOOST_TEST(proxy.faults() == 2);
    BOOST_TEST(c.stats().retries == 2u);
    BOOST_TEST(get_string(c, "sd") == data);
}

BOOST_FIXTURE_TEST_CASE(a_streamed_put_cut_mid_body_fails_the_writer_and_stores_nothing, proxied) {
    cfg.part_size = 5 * MiB;
    client c(cfg);
    proxy.cut_request_after(3 * MiB);
    object_writer w(c, "cut", large_objects::streamed);
    // The failure shows at a later write or at finish(), whichever comes after it.
    error e = error_of([&] {
        for (int i = 0; i < 12; ++i) w.write(std::string(MiB, static_cast<char>('a' + i)));
        w.finish();
    });
    BOOST_TEST((e.kind() == error_kind::network));
    BOOST_TEST(std::string(e.what()).find("not retried: the body source cannot start over") != std::string::npos,
               e.what());
    BOOST_TEST((w.current() == object_writer::state::failed));
    BOOST_TEST(c.stats().requests == 1u);
    BOOST_TEST(error_of([&] { c.head_object("cut"); }).not_found());
}

BOOST_AUTO_TEST_CASE(a_wrong_secret_is_signature_does_not_match_and_not_retried) {
    client_config cfg = aqt::s3_endpoint();
    cfg.secret_key = "wrong";
    client c(cfg);
    error e = error_of([&] { c.put_object("k", "v"); });
    BOOST_TEST(e.status() == 403);
    BOOST_TEST(e.code() == "SignatureDoesNotMatch");
    BOOST_TEST((e.kind() == error_kind::denied));
    BOOST_TEST(!e.retryable());
    BOOST_TEST(c.stats().requests == 1u);
    BOOST_TEST(std::string(e.what()).find("wrong") == std::string::npos);  // no secret in messages
}

BOOST_AUTO_TEST_CASE(a_refused_large_upload_is_answered_before_its_body_is_sent) {
    client_config cfg = aqt::s3_endpoint();
    cfg.secret_key = "wrong";
    client c(cfg);
    byte_pattern p(1, 50 * MiB);
    error e = error_of([&] { c.put_object("k", source_of(p, false)); });
    BOOST_TEST(e.code() == "SignatureDoesNotMatch");
    BOOST_TEST(p.produced() == 0u);  // Expect: 100-continue: not one byte was read
}

BOOST_AUTO_TEST_CASE(without_expect_continue_large_bodies_still_round_trip) {
    client_config cfg = aqt::s3_endpoint();
    cfg.expect_continue = false;
    client c(cfg);
    byte_pattern p(31, 7 * MiB);
    c.put_object("nx", source_of(p, false));
    std::string data = byte_pattern(32, 3 * MiB).all();
    c.put_object("nx2", data);
    BOOST_TEST(get_hashed(c, "nx").sha256 == p.sha256_hex());
    BOOST_TEST(get_string(c, "nx2") == data);
}

BOOST_FIXTURE_TEST_CASE(slow_down_twice_is_retried_with_backoff, proxied) {
    std::vector<std::string> notices;
    cfg.on_retry = [&](std::string_view op, unsigned attempt, std::chrono::milliseconds delay, const error& e) {
        notices.push_back(std::string(op) + " #" + std::to_string(attempt) + " " + e.code());
        BOOST_TEST(delay.count() >= 5);
        BOOST_TEST(delay.count() <= 40);
    };
    client c(cfg);
    proxy.answer_next(2, aqt::slow_down_response());
    std::string data = byte_pattern(5, 3 * MiB).all();  // in memory: 100-continue, signed
    c.put_object("k", data);
    BOOST_TEST(proxy.faults() == 2);
    BOOST_TEST(c.stats().retries == 2u);
    BOOST_TEST(notices == (std::vector<std::string>{"PUT object \"k\" #1 SlowDown", "PUT object \"k\" #2 SlowDown"}),
               boost::test_tools::per_element());
    BOOST_TEST(get_string(c, "k") == data);
}

BOOST_FIXTURE_TEST_CASE(retries_are_bounded, proxied) {
    cfg.retry.max_attempts = 3;
    client c(cfg);
    proxy.answer_next(100, aqt::slow_down_response());
    error e = error_of([&] { get_string(c, "k"); });
    BOOST_TEST(e.status() == 503);
    BOOST_TEST(e.code() == "SlowDown");
    BOOST_TEST((e.kind() == error_kind::throttled));
    BOOST_TEST(e.retryable());  // the caller may try again later
    BOOST_TEST(proxy.faults() == 3);
    BOOST_TEST(c.stats().requests == 3u);
}

BOOST_FIXTURE_TEST_CASE(a_dropped_connection_is_retried, proxied) {
    client c(cfg);
    c.put_object("k", "v");
    proxy.close_all();  // faults act on new connections
    proxy.drop_next(2);
    BOOST_TEST(get_string(c, "k") == "v");
    BOOST_TEST(proxy.faults() == 2);
    BOOST_TEST(c.stats().retries == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_server_that_stops_answering_is_timed_out_and_retried, proxied) {
    // Long enough that the real server, however loaded, answers a tiny PUT within it.
    cfg.io_timeout = std::chrono::milliseconds(1500);
    client c(cfg);
    proxy.stall_next(1);
    auto t0 = std::chrono::steady_clock::now();
    c.put_object("k", "v");
    auto waited = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(c.stats().retries >= 1u);
    BOOST_TEST(waited >= std::chrono::milliseconds(1500));  // the timeout, not an error, ended the first try
    BOOST_TEST(get_string(c, "k") == "v");
}

BOOST_FIXTURE_TEST_CASE(an_answer_that_is_not_http_is_a_protocol_error_and_not_retried, proxied) {
    client c(cfg);
    proxy.answer_next(5, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    error e = error_of([&] { get_string(c, "k"); });
    BOOST_TEST((e.kind() == error_kind::protocol));
    BOOST_TEST(!e.retryable());
    BOOST_TEST(proxy.faults() == 1);
}

BOOST_FIXTURE_TEST_CASE(a_listing_that_is_not_the_expected_xml_is_a_protocol_error, proxied) {
    client c(cfg);
    const std::string body = "<html>not a listing</html>";
    proxy.answer_next(1, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body);
    error e = error_of([&] { c.list_objects(""); });
    BOOST_TEST((e.kind() == error_kind::protocol));
    BOOST_TEST(std::string(e.what()).find("expected a <ListBucketResult> document, got <html>") != std::string::npos,
               e.what());
    proxy.answer_next(1, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<a><b");
    BOOST_TEST(std::string(error_of([&] { c.list_objects(""); }).what()).find("the answer is not XML") !=
               std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_connection_the_server_closed_while_idle_is_not_reused, proxied) {
    client c(cfg);
    c.put_object("k", "v");
    BOOST_TEST(c.stats().connections == 1u);
    proxy.close_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the FIN reaches the client's socket
    BOOST_TEST(get_string(c, "k") == "v");
    BOOST_TEST(c.stats().connections == 2u);
    BOOST_TEST(c.stats().retries == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_streamed_put_cut_mid_body_is_not_retried_when_the_source_cannot_restart, proxied) {
    client c(cfg);
    byte_pattern p(7, 20 * MiB);
    proxy.cut_request_after(3 * MiB);
    error e = error_of([&] { c.put_object("cut", source_of(p, false)); });
    BOOST_TEST((e.kind() == error_kind::network));
    BOOST_TEST(std::string(e.what()).find("not retried: the body source cannot start over") != std::string::npos,
               e.what());
    BOOST_TEST(c.stats().requests == 1u);
    BOOST_TEST(p.produced() > 0u);
    BOOST_TEST(p.produced() < 20 * MiB);
    // Nothing partial was stored.
    BOOST_TEST(error_of([&] { c.head_object("cut"); }).not_found());
}

BOOST_FIXTURE_TEST_CASE(a_streamed_put_cut_mid_body_is_retried_from_the_start_when_the_source_can_restart, proxied) {
    client c(cfg);
    byte_pattern p(8, 20 * MiB);
    proxy.cut_request_after(3 * MiB);
    c.put_object("cut", source_of(p, true));
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(c.stats().retries == 1u);
    fetched f = get_hashed(c, "cut");
    BOOST_TEST(f.bytes == 20 * MiB);
    BOOST_TEST(f.sha256 == p.sha256_hex());
}

BOOST_FIXTURE_TEST_CASE(a_download_cut_mid_body_resumes_where_it_stopped, proxied) {
    client c(cfg);
    byte_pattern p(12, 9 * MiB);
    c.put_object("dl", source_of(p, true));
    proxy.close_all();
    proxy.cut_response_after(4 * MiB + 333);
    fetched f = get_hashed(c, "dl");
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(c.stats().retries == 1u);
    BOOST_TEST(f.bytes == 9 * MiB);
    BOOST_TEST(f.sha256 == p.sha256_hex());
    // And a range resumes inside its own window.
    proxy.close_all();
    proxy.cut_response_after(2 * MiB);
    std::string all = p.all();
    fetched r = get_hashed(c, "dl", byte_range{MiB + 1, 7 * MiB});
    BOOST_TEST(r.bytes == 6 * MiB);
    BOOST_TEST(r.sha256 == aqt::sha256_hex(std::string_view(all).substr(MiB + 1, 6 * MiB)));
}

BOOST_FIXTURE_TEST_CASE(a_download_whose_object_changes_while_resuming_fails_instead_of_mixing_versions, proxied) {
    client direct(real);
    client c(cfg);
    direct.put_object("v", std::string(6 * MiB, '1'));
    proxy.cut_response_after(2 * MiB);
    std::uint64_t got = 0;
    error e = error_of([&] {
        c.get_object("v", [&](std::string_view piece) {
            // Replace the object once the first bytes arrived, before the cut.
            if (got == 0) direct.put_object("v", std::string(6 * MiB, '2'));
            got += piece.size();
        });
    });
    BOOST_TEST(e.status() == 412);
    BOOST_TEST((e.kind() == error_kind::precondition));
    BOOST_TEST(got < 6 * MiB);
}

BOOST_FIXTURE_TEST_CASE(a_body_corrupted_on_the_way_is_refused_and_nothing_is_stored, proxied) {
    client c(cfg);  // http: the body's SHA-256 is signed (payload_signing::unless_tls)
    std::string data = byte_pattern(21, 2 * MiB).all();
    proxy.corrupt_request_at(MiB);   // well past the headers: a byte of the body
    error e = error_of([&] { c.put_object("bad", data); });
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(e.status() == 400);
    BOOST_TEST(e.code() == "BadDigest");
    BOOST_TEST(error_of([&] { c.head_object("bad"); }).not_found());
}

BOOST_FIXTURE_TEST_CASE(without_payload_signing_a_corrupted_body_is_stored_as_received, proxied) {
    // The trade-off payload_signing::never makes (and unless_tls makes over https, where TLS
    // would have caught it): the server cannot tell; the ETag (the MD5 it computed) shows it.
    cfg.signing = payload_signing::never;
    client c(cfg);
    std::string data = byte_pattern(22, 2 * MiB).all();
    proxy.corrupt_request_at(MiB);
    std::string etag = c.put_object("flipped", data);
    BOOST_TEST(proxy.faults() == 1);
    BOOST_TEST(etag != "\"" + md5_hex(data) + "\"");
    BOOST_TEST(get_string(c, "flipped") != data);
}

BOOST_FIXTURE_TEST_CASE(an_object_writer_whose_part_fails_aborts_and_stores_nothing, proxied) {
    cfg.part_size = 5 * MiB;
    cfg.parts_in_flight = 0;  // parts go up on the caller's thread: the failure surfaces in write()
    client c(cfg);
    object_writer w(c, "half");
    w.write(std::string(6 * MiB, 'a'));  // part 1 is sent
    BOOST_TEST(w.parts_sent() == 1);
    proxy.close_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    proxy.answer_next(static_cast<int>(cfg.retry.max_attempts), aqt::slow_down_response());  // part 2, every attempt
    error e = error_of([&] { w.write(std::string(5 * MiB, 'b')); });
    BOOST_TEST(e.code() == "SlowDown");
    BOOST_TEST((w.current() == object_writer::state::failed));
    BOOST_CHECK_THROW(w.write("more"), std::logic_error);
    BOOST_CHECK_THROW(w.finish(), std::logic_error);
    BOOST_TEST(c.list_multipart_uploads("half").uploads.empty());  // the abort got through
    BOOST_TEST(error_of([&] { c.head_object("half"); }).not_found());
}

BOOST_AUTO_TEST_CASE(a_closed_port_is_a_retryable_network_error) {
    client_config cfg = aqt::s3_endpoint(false);
    {
        aqt::fault_proxy closed(1);  // bind a port, then free it
        cfg.endpoint = "http://127.0.0.1:" + std::to_string(closed.port());
    }
    cfg.retry = retry_policy{2, std::chrono::milliseconds(1), std::chrono::milliseconds(2)};
    client c(cfg);
    error e = error_of([&] { c.head_object("k"); });
    BOOST_TEST((e.kind() == error_kind::network));
    BOOST_TEST(e.retryable());
    BOOST_TEST(std::string(e.what()).find("cannot connect to 127.0.0.1:") != std::string::npos, e.what());
    BOOST_TEST(c.stats().requests == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tls)

namespace {

// A self-signed certificate for DNS:localhost only (no IP address), made with the openssl CLI.
struct localhost_certificate {
    std::filesystem::path dir;
    std::string cert, key;
    localhost_certificate() {
        char tmpl[] = "/tmp/aqt-s3-tls.XXXXXX";
        BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        cert = (dir / "cert.pem").string();
        key = (dir / "key.pem").string();
        std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
                          "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " + key + " -out " +
                          cert + " 2>" + (dir / "openssl.log").string();
        BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, cmd);
    }
    ~localhost_certificate() { std::filesystem::remove_all(dir); }
};

// The real server behind a TLS front presenting that certificate.
struct tls_front {
    client_config cfg = aqt::s3_endpoint();
    localhost_certificate id;
    aqt::tls_proxy front{port_of(cfg), id.cert, id.key};
    std::string at(std::string_view host) const { return "https://" + std::string(host) + ":" + std::to_string(front.port()); }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(https_with_a_trusted_certificate_for_the_host_round_trips_on_one_connection, tls_front) {
    cfg.endpoint = at("localhost");
    cfg.ca_file = id.cert;
    client c(cfg);
    std::string data = byte_pattern(77, 3 * MiB + 17).all();
    c.put_object("tls/k", data);
    BOOST_TEST(get_string(c, "tls/k") == data);
    BOOST_TEST(c.head_object("tls/k").size == data.size());
    BOOST_TEST(c.stats().connections == 1u);
    BOOST_TEST(front.handshakes() == 1);
}

BOOST_FIXTURE_TEST_CASE(a_certificate_that_does_not_name_the_host_is_refused_without_retrying, tls_front) {
    cfg.endpoint = at("127.0.0.1");  // the certificate names localhost only
    cfg.ca_file = id.cert;
    client c(cfg);
    error e = error_of([&] { c.put_object("k", "v"); });
    BOOST_TEST((e.kind() == error_kind::network));
    BOOST_TEST(!e.retryable());
    BOOST_TEST(std::string(e.what()).find("TLS handshake failed") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("certificate verify failed") != std::string::npos, e.what());
    BOOST_TEST(c.stats().requests == 1u);
    BOOST_TEST(front.handshakes() == 0);
}

BOOST_FIXTURE_TEST_CASE(a_certificate_no_trusted_authority_signed_is_refused, tls_front) {
    cfg.endpoint = at("localhost");  // no ca_file: the system store only
    client c(cfg);
    error e = error_of([&] { c.head_object("k"); });
    BOOST_TEST(!e.retryable());
    BOOST_TEST(std::string(e.what()).find("certificate verify failed") != std::string::npos, e.what());
    BOOST_TEST(front.handshakes() == 0);
}

BOOST_AUTO_TEST_CASE(an_unreadable_ca_file_is_refused_at_construction) {
    client_config cfg = aqt::s3_endpoint(false);
    cfg.endpoint = "https://localhost:1";
    cfg.ca_file = "/nonexistent/ca.pem";
    BOOST_CHECK_THROW(client c(cfg), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()
