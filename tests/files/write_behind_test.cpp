// write_behind: an upload's bytes reach the sink in order, in blocks, on a thread of its own
// once there is more than one block; a failure there is thrown on the caller's thread with its
// type; a cancelled one never calls the sink again.
#define BOOST_TEST_MODULE files_write_behind
#include <boost/test/unit_test.hpp>

#include "content_store.hpp"
#include "write_behind.hpp"

#include <algorithm>

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

BOOST_AUTO_TEST_CASE(pass_on_hands_the_partial_block_to_the_stages_without_waiting_for_them) {
    std::mutex gate;
    std::unique_lock closed(gate);  // the sink waits here: pass_on() must not
    recorder r;
    write_behind w([&](std::string_view block) {
        std::lock_guard wait(gate);
        r.sink()(block);
    });
    w.push(pattern(10));
    w.pass_on();
    w.push(pattern(20));
    w.pass_on();
    w.pass_on();  // nothing new: no empty block
    closed.unlock();
    w.finish();
    BOOST_TEST(r.blocks == (std::vector<std::size_t>{10, 20}), boost::test_tools::per_element());
    BOOST_TEST((r.threads[0] != std::this_thread::get_id()));
    BOOST_TEST((r.bytes == pattern(10) + pattern(20)));
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
        while (calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        // The sink is released well after cancel() has begun (it drops the queue at once, then
        // waits): released any sooner, the thread would take the next block.
        std::atomic<bool> cancelling{false};
        std::thread releaser([&] {
            while (!cancelling) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            release = true;
        });
        cancelling = true;
        w.cancel();  // drops the queued two, waits for the one in the sink
        releaser.join();
        BOOST_TEST(calls.load() == 1);  // the block it held; never the two dropped
    }  // the destructor after cancel: nothing more
    BOOST_TEST(calls.load() == 1);
}

// The store's writer has two stages (hash, then store): each sees every byte in order, on a
// thread of its own, and a block reaches the second only after the first is done with it.
BOOST_AUTO_TEST_CASE(two_stages_see_every_block_in_order_the_second_after_the_first) {
    recorder first, second;
    std::mutex mutex;
    std::vector<std::string> events;
    const std::string content = pattern(5 * write_behind::block_bytes + 777);
    {
        write_behind w({[&](std::string_view b) {
                            first.sink()(b);
                            std::lock_guard lock(mutex);
                            events.push_back("1:" + std::to_string(first.blocks.size()));
                        },
                        [&](std::string_view b) {
                            second.sink()(b);
                            std::lock_guard lock(mutex);
                            events.push_back("2:" + std::to_string(second.blocks.size()));
                        }});
        for (std::size_t at = 0; at < content.size(); at += 100000) w.push(std::string_view(content).substr(at, 100000));
        w.finish();
    }
    BOOST_TEST((first.bytes == content));
    BOOST_TEST((second.bytes == content));
    const std::vector<std::size_t> expected = {write_behind::block_bytes, write_behind::block_bytes,
                                               write_behind::block_bytes, write_behind::block_bytes,
                                               write_behind::block_bytes, 777};
    BOOST_TEST(first.blocks == expected, boost::test_tools::per_element());
    BOOST_TEST(second.blocks == expected, boost::test_tools::per_element());
    // Block k is through the first stage before the second sees it.
    for (std::size_t k = 1; k <= expected.size(); ++k) {
        const auto one = std::find(events.begin(), events.end(), "1:" + std::to_string(k));
        const auto two = std::find(events.begin(), events.end(), "2:" + std::to_string(k));
        BOOST_TEST_REQUIRE((one != events.end() && two != events.end()));
        BOOST_TEST((one < two));
    }
    // The full blocks ran on two threads other than this one; the last, partial one inline.
    BOOST_TEST((first.threads[0] != second.threads[0]));
    BOOST_TEST((first.threads[0] != std::this_thread::get_id()));
    BOOST_TEST((first.threads[5] == std::this_thread::get_id()));
}

// A failure of the second stage ends the first too: it is not called for later blocks.
BOOST_AUTO_TEST_CASE(a_failure_of_the_second_stage_stops_the_first) {
    std::atomic<int> hashed{0}, stored{0};
    write_behind w({[&](std::string_view) { ++hashed; },
                    [&](std::string_view) {
                        if (++stored == 2) throw aq::files::content_unavailable("the disk is full");
                    }});
    const std::string block(write_behind::block_bytes, 'z');
    bool thrown = false;
    try {
        for (int i = 0; i < 50; ++i) w.push(block);
        w.finish();
    } catch (const aq::files::content_unavailable& e) {
        thrown = true;
        BOOST_TEST(std::string(e.what()) == "the disk is full");
    }
    BOOST_TEST(thrown);
    BOOST_TEST(stored.load() == 2);
    const int hashed_then = hashed.load();
    // At most the blocks in flight were hashed beyond the two stored.
    BOOST_TEST(hashed_then >= 2);
    BOOST_TEST(hashed_then <= 2 + static_cast<int>(write_behind::blocks_in_flight));
    BOOST_CHECK_THROW(w.finish(), aq::files::content_unavailable);
    BOOST_TEST(hashed.load() == hashed_then);
    BOOST_TEST(stored.load() == 2);
}

// cancel() while the first stage holds a block: that block never reaches the second.
BOOST_AUTO_TEST_CASE(a_cancelled_block_goes_no_further_than_its_stage) {
    std::atomic<int> hashed{0}, stored{0};
    std::atomic<bool> release{false};
    {
        write_behind w({[&](std::string_view) {
                            ++hashed;
                            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                        },
                        [&](std::string_view) { ++stored; }});
        const std::string block(write_behind::block_bytes, 'q');
        w.push(block);  // the first stage takes it and blocks
        w.push(block);
        while (hashed.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::atomic<bool> cancelling{false};
        std::thread releaser([&] {  // as above: well after cancel() has begun
            while (!cancelling) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            release = true;
        });
        cancelling = true;
        w.cancel();
        releaser.join();
    }
    BOOST_TEST(hashed.load() == 1);
    BOOST_TEST(stored.load() == 0);
}
