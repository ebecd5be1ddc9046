#include "s3_store.hpp"

#include "test_pause.hpp"

#include "s3/object_writer.hpp"

#include <aqueduct/plugin.hpp>  // random_id

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace aq::files {
namespace {

using namespace std::chrono_literals;

aq::s3::client_config client_config_of(const s3_settings& s, s3_store::retry_report report) {
    aq::s3::client_config c;
    c.endpoint = s.endpoint;
    c.bucket = s.bucket;
    c.region = s.region;
    c.style = s.path_style ? aq::s3::addressing::path : aq::s3::addressing::virtual_host;
    c.access_key = s.access_key;
    c.secret_key = s.secret_key;
    c.session_token = s.session_token;
    c.ca_file = s.ca_file;
    c.part_size = static_cast<std::size_t>(s.part_bytes);
    c.parts_in_flight = s.parts_in_flight;
    c.retry.max_attempts = s.max_attempts;
    c.signing = s.payload_signing;
    if (report)
        c.on_retry = [report](std::string_view operation, unsigned attempt, std::chrono::milliseconds delay,
                              const aq::s3::error& e) {
            report("files: s3 " + std::string(operation) + " failed (attempt " + std::to_string(attempt) +
                       "), retrying in " + std::to_string(delay.count()) + " ms: " + e.what(),
                   e.kind());
        };
    return c;
}

// An S3 failure as the store's: not found is content_gone, what retrying may cure (throttling,
// 5xx, the network) content_unavailable, the rest as it is.
[[noreturn]] void rethrow_as_store_error(std::exception_ptr failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const aq::s3::error& e) {
        if (e.not_found()) throw content_gone(e.what());
        if (e.retryable()) throw content_unavailable(e.what());
        throw;
    }
}

template <class Fn>
decltype(auto) s3_call(Fn&& fn) {
    try {
        return fn();
    } catch (...) {
        rethrow_as_store_error(std::current_exception());
    }
}

// "2026-11-30T06:27:53.000Z" -> Unix seconds; nullopt when unreadable.
std::optional<std::int64_t> iso8601_seconds(const std::string& text) {
    std::tm tm{};
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec) != 6)
        return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(::timegm(&tm));
}

}  // namespace

// ---- writer --------------------------------------------------------------------------------

class s3_writer : public content_writer {
public:
    s3_writer(s3_store& store, const std::string& key, aq::s3::large_objects large, std::function<void()> intent)
        : writer_(store.client_, store.object_key(key), large), part_bytes_(store.client_.config().part_size),
          intent_(std::move(intent)) {}

    void write(std::string_view data) override {
        // The writer sends its first part once more than a part's worth has come.
        if (intent_ && writer_.size() + data.size() > part_bytes_) record_intent();
        s3_call([&] { writer_.write(data); });
        if (!part_sent_ && writer_.current() != aq::s3::object_writer::state::buffering) {
            part_sent_ = true;
            // Test-only (test_pause.hpp): a multipart upload exists, unfinished, or a streamed
            // PUT is under way.
            pause_point("s3_part_sent");
        }
    }

    void seal() override {
        if (intent_) record_intent();
        s3_call([&] { writer_.finish(); });
    }

    // A streamed PUT must not stall: Swift reads its body 64 KiB (client_chunk_size) at a time
    // and drops it when one read waits longer than client_timeout (60 s by default); servers
    // that count idle seconds drop it sooner (AWS: about 20). Whatever the client sent goes
    // on within a second, so only a client slower than that (Swift's defaults: ~1 KiB/s, the
    // host's own minimum rate) loses its upload, with a 503.
    std::int64_t max_wait_seconds() const noexcept override { return 1; }

private:
    void record_intent() {
        auto intent = std::move(intent_);
        intent_ = nullptr;
        intent();
    }

    aq::s3::object_writer writer_;  // aborts an unfinished multipart upload when destroyed
    std::size_t part_bytes_;
    std::function<void()> intent_;
    bool part_sent_ = false;
};

// ---- reader --------------------------------------------------------------------------------

class s3_reader : public content_reader {
public:
    static constexpr std::size_t buffer_limit = 1 << 20;
    // The GET's thread copies a piece in once at least this much room (or the whole rest of the
    // piece) is free, so a reader taking small reads does not wake it for a few bytes each time.
    static constexpr std::size_t min_copy = 64 << 10;
    // How long a GET waits for the reader to make room before it ends (to resume later).
    static constexpr auto stall_limit = 1s;

    s3_reader(aq::s3::client& c, std::string object_key, std::uint64_t offset, std::uint64_t length)
        : client_(c), key_(std::move(object_key)), next_(offset), end_(offset + length) {}

    ~s3_reader() override {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    std::size_t read(std::span<char> buf) override {
        if (buf.empty()) return 0;
        std::unique_lock lk(mu_);
        for (;;) {
            if (buffered_ > 0) {
                std::size_t n = std::min(buf.size(), buffered_);
                // Copied out under the lock: the GET's thread writes only free space, but the
                // ring's counters and its wakeups stay simple this way (a 1 MiB memcpy at most).
                std::size_t first = std::min(n, buffer_limit - head_);
                std::memcpy(buf.data(), ring_.get() + head_, first);
                std::memcpy(buf.data() + first, ring_.get(), n - first);
                head_ = (head_ + n) % buffer_limit;
                buffered_ -= n;
                cv_.notify_all();
                return n;
            }
            if (error_) {
                std::exception_ptr e = error_;
                lk.unlock();
                rethrow_as_store_error(e);
            }
            if (!fetching_) {
                if (next_ == end_) return 0;
                start_fetch(lk);
            }
            cv_.wait(lk);
        }
    }

private:
    struct paused {};

    void start_fetch(std::unique_lock<std::mutex>& lk) {
        if (thread_.joinable()) {  // the last GET has ended (fetching_ is false): only its exit is left
            lk.unlock();
            thread_.join();
            lk.lock();
        }
        if (!ring_) ring_ = std::make_unique_for_overwrite<char[]>(buffer_limit);
        fetching_ = true;
        thread_ = std::thread([this] { fetch(); });
    }

    // Copies a piece of the GET's body into the ring as room appears; throws `paused` when the
    // reader has made no room for stall_limit (or the reader is gone).
    void take(std::string_view piece) {
        std::unique_lock lk(mu_);
        while (!piece.empty()) {
            const std::size_t want = std::min(piece.size(), min_copy);
            if (!cv_.wait_for(lk, stall_limit, [&] { return stop_ || buffer_limit - buffered_ >= want; }) || stop_)
                throw paused{};
            std::size_t n = std::min(piece.size(), buffer_limit - buffered_);
            std::size_t tail = (head_ + buffered_) % buffer_limit;
            std::size_t first = std::min(n, buffer_limit - tail);
            std::memcpy(ring_.get() + tail, piece.data(), first);
            std::memcpy(ring_.get(), piece.data() + first, n - first);
            buffered_ += n;
            next_ += n;
            piece.remove_prefix(n);
            cv_.notify_all();
        }
    }

    void fetch() {
        std::uint64_t from;
        {
            std::lock_guard lk(mu_);
            from = next_;
        }
        std::exception_ptr failure;
        try {
            client_.get_object(key_, [this](std::string_view piece) { take(piece); }, aq::s3::byte_range{from, end_ - 1});
        } catch (const paused&) {
        } catch (...) {
            failure = std::current_exception();
        }
        std::lock_guard lk(mu_);
        if (failure) error_ = failure;
        fetching_ = false;
        cv_.notify_all();
    }

    aq::s3::client& client_;
    const std::string key_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::uint64_t next_;       // the next byte to ask S3 for
    const std::uint64_t end_;  // one past the last byte to read
    // A ring of buffer_limit bytes, allocated once at the first GET: a fresh buffer per piece
    // cost a page fault per 4 KiB (glibc serves 256 KiB with mmap), about a fifth of the
    // gateway's CPU in a download. buffered_ bytes from head_ are the reader's.
    std::unique_ptr<char[]> ring_;
    std::size_t head_ = 0;
    std::size_t buffered_ = 0;
    bool fetching_ = false, stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

// ---- store ---------------------------------------------------------------------------------

s3_store::s3_store(const s3_settings& settings, retry_report on_retry)
    : client_(client_config_of(settings, std::move(on_retry))), prefix_(settings.prefix) {
    try {
        client_.list_objects(prefix_, {}, 1);
    } catch (const std::exception& e) {
        throw std::runtime_error("the s3 store cannot list bucket \"" + settings.bucket + "\" at " + settings.endpoint +
                                 ": " + e.what());
    }
    if (settings.large == s3_settings::large_contents::automatic &&
        settings.payload_signing != aq::s3::payload_signing::always) {
        // A key of its own per start, so hosts starting together on one bucket do not collide.
        const std::string probe = prefix_ + aq::random_id("probe-");
        try {
            streams_ = client_.takes_chunked_puts(probe);
        } catch (const std::exception& e) {
            throw std::runtime_error("the s3 store cannot write to bucket \"" + settings.bucket + "\" at " +
                                     settings.endpoint + ": " + e.what());
        }
    }
}

std::unique_ptr<content_writer> s3_store::create(const std::string& key, std::uint64_t max_bytes,
                                       std::function<void()> intent) {
    const bool stream = streams_ && max_bytes <= max_streamed_bytes;
    return std::make_unique<s3_writer>(*this, key,
                                       stream ? aq::s3::large_objects::streamed : aq::s3::large_objects::multipart,
                                       std::move(intent));
}

std::unique_ptr<content_reader> s3_store::open(const file_record& file, std::uint64_t offset, std::uint64_t length) {
    return std::make_unique<s3_reader>(client_, object_key(file.content_key), offset, length);
}

void s3_store::remove(const std::string& key, bool abandoned) {
    const std::string object = object_key(key);
    s3_call([&] {
        if (abandoned) {
            // Unfinished multipart uploads of exactly this key (the prefix also lists longer keys).
            std::string key_marker, id_marker;
            do {
                aq::s3::upload_page page = client_.list_multipart_uploads(object, key_marker, id_marker);
                for (const auto& u : page.uploads)
                    if (u.key == object) client_.abort_multipart_upload(u.key, u.upload_id);
                key_marker = page.next_key_marker;
                id_marker = page.next_upload_id_marker;
            } while (!key_marker.empty() || !id_marker.empty());
        }
        client_.delete_object(object);
    });
}

std::size_t s3_store::sweep_uploads(std::chrono::seconds grace,
                                    const std::function<bool(const std::string& key)>& live) {
    const std::int64_t cutoff =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
        grace.count();
    std::size_t aborted = 0;
    s3_call([&] {
        std::string key_marker, id_marker;
        do {
            aq::s3::upload_page page = client_.list_multipart_uploads(prefix_, key_marker, id_marker);
            for (const auto& u : page.uploads) {
                auto initiated = iso8601_seconds(u.initiated);
                if (!initiated || *initiated > cutoff) continue;
                if (live(u.key.substr(prefix_.size()))) continue;
                client_.abort_multipart_upload(u.key, u.upload_id);
                ++aborted;
            }
            key_marker = page.next_key_marker;
            id_marker = page.next_upload_id_marker;
        } while (!key_marker.empty() || !id_marker.empty());
    });
    return aborted;
}

}  // namespace aq::files
