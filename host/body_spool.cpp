#include "body_spool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

namespace aqd {

namespace {

[[noreturn]] void fail(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

// An unnamed file in `dir`: O_TMPFILE where the filesystem supports it, else a named file that
// is unlinked at once (the window in which it has a name is a few microseconds).
int open_unnamed(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    const int err = errno;
    if (err != EOPNOTSUPP && err != EISDIR && err != EINVAL)
        fail(err, "spool_dir " + dir.string() + ": cannot create a temporary file");
    std::string name = (dir / "aqueduct-spool-XXXXXX").string();
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) fail(errno, "spool_dir " + dir.string() + ": cannot create a temporary file");
    ::unlink(name.c_str());
    return fd;
}

}  // namespace

bool spool_budget::reserve(std::uint64_t n) noexcept {
    if (max_ == 0) {
        used_.fetch_add(n, std::memory_order_relaxed);
        return true;
    }
    std::uint64_t cur = used_.load(std::memory_order_relaxed);
    do {
        if (n > max_ || cur > max_ - n) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
}

body_spool::body_spool(std::filesystem::path dir, std::size_t memory_bytes, spool_budget& budget)
    : dir_(std::move(dir)), memory_bytes_(memory_bytes), budget_(budget) {}

body_spool::~body_spool() {
    if (fd_ >= 0) ::close(fd_);
    budget_.release(reserved_);
}

void body_spool::check_dir(const std::filesystem::path& dir) { ::close(open_unnamed(dir)); }

bool body_spool::reserve_total(std::uint64_t n) {
    if (n <= reserved_) return true;
    if (!budget_.reserve(n - reserved_)) return false;
    reserved_ = n;
    return true;
}

bool body_spool::append(std::string_view bytes) {
    if (bytes.empty()) return true;
    if (!reserve_total(written_ + bytes.size())) return false;
    if (written_ < memory_bytes_) {
        const std::size_t take = std::min<std::uint64_t>(bytes.size(), memory_bytes_ - written_);
        // Grows by doubling up to the threshold: a trickling body costs what it has sent.
        if (memory_.capacity() < memory_.size() + take)
            memory_.reserve(std::min<std::size_t>(memory_bytes_, std::max(memory_.size() + take, memory_.capacity() * 2)));
        memory_.append(bytes.substr(0, take));
        written_ += take;
        bytes.remove_prefix(take);
    }
    if (!bytes.empty() && window_max_ > 0) {
        append_window(bytes);  // publishes size_ itself
        arrived_.notify_one();
        return true;
    }
    if (!bytes.empty()) {
        if (fd_ < 0) open_file();
        write_file(bytes);
        written_ += bytes.size();
    }
    {
        std::lock_guard lock(mutex_);
        size_ = written_;
    }
    arrived_.notify_one();
    return true;
}

void body_spool::stream_through_memory(std::size_t window_bytes, std::function<void()> on_room) {
    std::lock_guard lock(mutex_);
    file_end_ = written_;
    window_max_ = std::max<std::size_t>(window_bytes, 1);
    on_room_ = std::move(on_room);
}

void body_spool::append_window(std::string_view bytes) {
    std::string block;
    {
        std::lock_guard lock(mutex_);
        if (!spare_.empty()) {
            block = std::move(spare_.back());
            spare_.pop_back();
        }
    }
    // Every block gets room for the connection's largest read, so a reused block never grows:
    // reads vary in size, and a spare from a short read would otherwise be reallocated by the
    // next long one. So a streaming body allocates nothing in the steady state.
    block.reserve(std::max(bytes.size(), window_block_bytes));
    block.assign(bytes);
    written_ += bytes.size();
    std::lock_guard lock(mutex_);
    window_.push_back(std::move(block));
    window_bytes_ += bytes.size();
    size_ = written_;
}

bool body_spool::hold() {
    std::lock_guard lock(mutex_);
    if (window_max_ == 0 || window_bytes_ < window_max_) return false;
    held_ = true;
    return true;
}

void body_spool::finish() {
    {
        std::lock_guard lock(mutex_);
        if (state_ == state::receiving) state_ = state::complete;
    }
    arrived_.notify_one();
}

void body_spool::abandon() {
    {
        std::lock_guard lock(mutex_);
        if (state_ == state::receiving) state_ = state::abandoned;
    }
    arrived_.notify_one();
}

void body_spool::open_file() { fd_ = open_unnamed(dir_); }

void body_spool::write_file(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd_, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(errno, "spool_dir " + dir_.string() + ": cannot write a request body");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::int64_t body_spool::read(void* buf, std::size_t cap) {
    if (cap == 0) return 0;
    std::uint64_t available;
    {
        std::unique_lock lock(mutex_);
        arrived_.wait(lock, [&] { return read_pos_ < size_ || state_ != state::receiving; });
        if (read_pos_ >= size_) return state_ == state::complete ? 0 : -static_cast<std::int64_t>(ECONNABORTED);
        available = size_;
    }
    if (read_pos_ < memory_.size()) {
        const std::size_t n = std::min<std::size_t>(cap, memory_.size() - read_pos_);
        std::memcpy(buf, memory_.data() + read_pos_, n);
        read_pos_ += n;
        return static_cast<std::int64_t>(n);
    }
    if (read_pos_ >= file_end_) return read_window(buf, cap);
    const std::uint64_t file_pos = read_pos_ - memory_.size();
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(cap, std::min(available, file_end_) - read_pos_));
    for (;;) {
        ssize_t n = ::pread(fd_, buf, want, static_cast<off_t>(file_pos));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -static_cast<std::int64_t>(errno);
        if (n == 0) return -static_cast<std::int64_t>(EIO);  // the file is shorter than written
        read_pos_ += static_cast<std::uint64_t>(n);
        return n;
    }
}

// The next bytes of the window (there are some: read() saw size_ beyond read_pos_).
std::int64_t body_spool::read_window(void* buf, std::size_t cap) {
    // Read blocks kept for the writer: what it refills after a hold (half the 4 MiB window, in
    // the connection's 64 KiB reads), so that a body streaming at full speed allocates nothing;
    // 2 MiB more per streaming body, and only while it streams.
    constexpr std::size_t spare_blocks = 32;
    // The blocks to copy from, taken under the mutex; their bytes are copied without it, so the
    // writer (the I/O thread) never waits for a copy.
    constexpr std::size_t most = 64;
    const std::string* blocks[most];
    std::size_t count = 0, offset;
    {
        std::lock_guard lock(mutex_);
        offset = window_front_used_;
        std::size_t covered = 0;
        for (const std::string& b : window_) {
            if (count == most || covered >= cap + offset) break;
            blocks[count++] = &b;
            covered += b.size();
        }
    }
    char* out = static_cast<char*>(buf);
    std::size_t n = 0, whole = 0, used_in_last = offset;
    for (std::size_t i = 0; i < count && n < cap; ++i) {
        const std::string& b = *blocks[i];
        const std::size_t from = i == 0 ? offset : 0;
        const std::size_t take = std::min(b.size() - from, cap - n);
        std::memcpy(out + n, b.data() + from, take);
        n += take;
        if (from + take == b.size()) {
            ++whole;
            used_in_last = 0;
        } else {
            used_in_last = from + take;
        }
    }
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        for (std::size_t i = 0; i < whole; ++i) {
            if (spare_.size() < spare_blocks) spare_.push_back(std::move(window_.front()));
            window_.pop_front();
        }
        window_front_used_ = used_in_last;
        window_bytes_ -= n;
        // Half the window free before the writer goes on: it resumes in long runs, not a read at
        // a time.
        if (held_ && window_bytes_ <= window_max_ / 2) {
            held_ = false;
            wake = true;
        }
    }
    read_pos_ += n;
    if (wake && on_room_) on_room_();
    return static_cast<std::int64_t>(n);
}

}  // namespace aqd
