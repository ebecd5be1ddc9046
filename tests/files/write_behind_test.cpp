// write_behind: an upload's bytes reach the sink in order, in blocks, on a thread of its own
// once there is more than one block; a failure there is thrown on the caller's thread with its
// type; a cancelled one never calls the sink again.
#define BOOST_TEST_MODULE files_write_behind
#include <boost/test/unit_test.hpp>

#include "content_store.hpp"
#include "write_behind.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using aq::files::write_behind;

namespace {

struct recorder {
    std::mutex mutex;
    std::string bytes;
    std::vector<std::size_t> blocks;
    std::vector<std::thread::id> threads;
    write_behind::sink sink() {
        return [this](std::string_view block) {
            std::lock_guard lock(mutex);
            bytes.append(block);
            blocks.push_back(block.size());
            threads.push_back(std::this_thread::get_id());
        };
    }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + i / 7);
    return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(bytes_reach_the_sink_in_order_in_whole_blocks_on_another_thread) {
    recorder r;
    const std::string content = pattern(3 * write_behind::block_bytes + 12345);
    {
        write_behind w(r.sink());
        // Uneven pieces, as a multipart parser hands them out.
        for (std::size_t at = 0, piece = 1; at < content.size(); at += piece, piece = piece * 3 % 70001 + 1)
            w.push(std::string_view(content).substr(at, piece));
        w.finish();
    }
    BOOST_TEST((r.bytes == content));
    const std::vector<std::size_t> expected = {write_behind::block_bytes, write_behind::block_bytes,
                                               write_behind::block_bytes, 12345};
    BOOST_TEST(r.blocks == expected, boost::test_tools::per_element());
    BOOST_TEST((r.threads[0] != std::this_thread::get_id()));
    BOOST_TEST((r.threads[3] == std::this_thread::get_id()));  // the last, partial block: at finish, inline
}

BOOST_AUTO_TEST_CASE(a_content_of_one_block_or_less_reaches_the_sink_only_at_finish_and_inline) {
    recorder r;
    write_behind w(r.sink());
    w.push(pattern(1000));
    w.push(pattern(write_behind::block_bytes - 1000).substr(0, 5000));
    BOOST_TEST(r.blocks.empty());
    w.finish();
    BOOST_TEST(r.blocks == std::vector<std::size_t>{6000}, boost::test_tools::per_element());
    BOOST_TEST((r.threads[0] == std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(flush_passes_on_the_partial_block_and_waits_for_the_sink) {
    recorder r;
    write_behind w(r.sink());
    w.push(pattern(write_behind::block_bytes + 10));
    w.flush();
    BOOST_TEST(r.blocks == (std::vector<std::size_t>{write_behind::block_bytes, 10}), boost::test_tools::per_element());
    w.push("abc");
    w.finish();
    BOOST_TEST(r.blocks.back() == 3u);
    BOOST_TEST((r.bytes == pattern(write_behind::block_bytes + 10) + "abc"));
}

BOOST_AUTO_TEST_CASE(a_failure_of_the_sink_is_thrown_on_the_callers_thread_with_its_type_and_ends_the_sink) {
    std::atomic<int> calls{0};
    write_behind w([&](std::string_view) {
        if (++calls == 2) throw aq::files::content_unavailable("the bucket throttles");
    });
    const std::string block(write_behind::block_bytes, 'x');
    bool thrown = false;
    try {
        for (int i = 0; i < 50; ++i) w.push(block);  // the failure surfaces within a few blocks
        w.finish();
    } catch (const aq::files::content_unavailable& e) {
        thrown = true;
        BOOST_TEST(std::string(e.what()) == "the bucket throttles");
    }
    BOOST_TEST(thrown);
    BOOST_TEST(calls.load() == 2);
    BOOST_CHECK_THROW(w.finish(), aq::files::content_unavailable);
    BOOST_TEST(calls.load() == 2);
}

BOOST_AUTO_TEST_CASE(a_cancelled_write_never_calls_the_sink_again) {
    std::atomic<int> calls{0};
    std::atomic<bool> release{false};
    {
        write_behind w([&](std::string_view) {
            ++calls;
            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        const std::string block(write_behind::block_bytes, 'y');
        w.push(block);  // the thread takes it and blocks in the sink
        w.push(block);
        w.push(block);  // two more wait in the queue
        std::thread releaser([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            release = true;
        });
        w.cancel();  // drops the queued two, waits for the one in the sink
        releaser.join();
        BOOST_TEST(calls.load() == 1);  // the block it held; never the two dropped
    }  // the destructor after cancel: nothing more
    BOOST_TEST(calls.load() == 1);
}
