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
    const std::uint64_t file_pos = read_pos_ - memory_.size();
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(cap, available - read_pos_));
    for (;;) {
        ssize_t n = ::pread(fd_, buf, want, static_cast<off_t>(file_pos));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -static_cast<std::int64_t>(errno);
        if (n == 0) return -static_cast<std::int64_t>(EIO);  // the file is shorter than written
        read_pos_ += static_cast<std::uint64_t>(n);
        return n;
    }
}

}  // namespace aqd
