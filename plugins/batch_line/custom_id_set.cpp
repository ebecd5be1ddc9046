#include "batch_line/custom_id_set.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace aq::batch_line {

// Every inserted id, in order, as records [hash: 8 bytes][length: 4 bytes][bytes], first in a
// memory buffer and, past spill_bytes, in an unnamed temporary file.
class custom_id_set::id_log {
public:
    explicit id_log(std::filesystem::path dir) : dir_(std::move(dir)) {}
    ~id_log() {
        if (fd_ >= 0) ::close(fd_);
    }

    void append(std::uint64_t h, std::string_view id) {
        auto len = static_cast<std::uint32_t>(id.size());
        tail_.append(reinterpret_cast<const char*>(&h), sizeof h);
        tail_.append(reinterpret_cast<const char*>(&len), sizeof len);
        tail_.append(id);
        longest_ = std::max<std::size_t>(longest_, header_bytes + id.size());
        if (tail_.size() >= spill_bytes) spill();
    }

    // True when an id equal to `id` was appended with hash `h`.
    bool contains(std::uint64_t h, std::string_view id) {
        if (fd_ >= 0) {
            // The file holds whole records (spill writes whole ones); a buffer of twice the
            // longest record always holds at least one.
            std::vector<char> buf(std::max<std::size_t>(spill_bytes, 2 * longest_));
            std::size_t have = 0;
            for (std::uint64_t offset = 0;;) {
                std::size_t want =
                    static_cast<std::size_t>(std::min<std::uint64_t>(buf.size() - have, file_bytes_ - offset));
                read_at(offset, buf.data() + have, want);
                offset += want;
                have += want;
                std::size_t used = scan(std::string_view(buf.data(), have), h, id);
                if (used == found) return true;
                std::memmove(buf.data(), buf.data() + used, have - used);
                have -= used;
                if (offset == file_bytes_) break;
            }
        }
        return scan(tail_, h, id) == found;
    }

private:
    static constexpr std::size_t header_bytes = 12;
    static constexpr std::size_t spill_bytes = 1 << 20;
    static constexpr std::size_t found = std::size_t(-1);

    // Scans whole records of `data`; `found` on a match, else the bytes of whole records seen.
    static std::size_t scan(std::string_view data, std::uint64_t h, std::string_view id) {
        std::size_t at = 0;
        while (data.size() - at >= header_bytes) {
            std::uint64_t rh;
            std::uint32_t len;
            std::memcpy(&rh, data.data() + at, sizeof rh);
            std::memcpy(&len, data.data() + at + sizeof rh, sizeof len);
            if (data.size() - at - header_bytes < len) break;
            if (rh == h && data.substr(at + header_bytes, len) == id) return found;
            at += header_bytes + len;
        }
        return at;
    }

    void spill() {
        if (fd_ < 0) open_file();
        std::string_view data = tail_;
        while (!data.empty()) {
            ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(file_bytes_));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "writing the custom_id log");
            file_bytes_ += static_cast<std::uint64_t>(n);
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        tail_.clear();
    }

    void read_at(std::uint64_t offset, char* buf, std::size_t n) {
        while (n > 0) {
            ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) throw std::system_error(got < 0 ? errno : EIO, std::generic_category(), "reading the custom_id log");
            buf += got;
            offset += static_cast<std::uint64_t>(got);
            n -= static_cast<std::size_t>(got);
        }
    }

    // An unnamed file: gone when closed, even after a crash.
    void open_file() {
        std::filesystem::path dir = dir_.empty() ? std::filesystem::temp_directory_path() : dir_;
        fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "custom_id log in " + dir.string());
    }

    std::filesystem::path dir_;
    std::string tail_;
    int fd_ = -1;
    std::uint64_t file_bytes_ = 0;
    std::size_t longest_ = 0;
};

custom_id_set::custom_id_set(std::filesystem::path scratch_dir, unsigned hash_bits)
    : key_(siphash_key::random()),
      hash_mask_(hash_bits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << hash_bits) - 1),
      log_(std::make_unique<id_log>(std::move(scratch_dir))) {}

custom_id_set::~custom_id_set() = default;

bool custom_id_set::insert(std::string_view id) {
    std::uint64_t h = siphash24(key_, id) & hash_mask_;
    if (h == 0) h = 1;  // 0 marks an empty slot; the exact check below absorbs the merge
    if (!add_hash(h) && log_->contains(h, id)) return false;
    // New hash, or a chance collision with a different id: either way a new id, which the log
    // must hold for later confirmations.
    log_->append(h, id);
    ++size_;
    return true;
}

bool custom_id_set::add_hash(std::uint64_t h) {
    segment& s = segments_[h >> 56];
    if (s.capacity == 0 || (s.used + 1) * 4 > s.capacity * 3) grow(s);
    std::uint32_t mask = s.capacity - 1;
    for (std::uint32_t i = static_cast<std::uint32_t>(h) & mask;; i = (i + 1) & mask) {
        if (s.slots[i] == h) return false;
        if (s.slots[i] == 0) {
            s.slots[i] = h;
            ++s.used;
            return true;
        }
    }
}

void custom_id_set::place(segment& s, std::uint64_t h) noexcept {
    std::uint32_t mask = s.capacity - 1;
    std::uint32_t i = static_cast<std::uint32_t>(h) & mask;
    while (s.slots[i] != 0) i = (i + 1) & mask;
    s.slots[i] = h;
}

void custom_id_set::grow(segment& s) {
    segment bigger;
    bigger.capacity = s.capacity ? s.capacity * 2 : 16;
    bigger.slots = std::make_unique<std::uint64_t[]>(bigger.capacity);  // zeroed
    bigger.used = s.used;
    for (std::uint32_t i = 0; i < s.capacity; ++i)
        if (s.slots[i]) place(bigger, s.slots[i]);
    s = std::move(bigger);
}

std::size_t custom_id_set::table_bytes() const noexcept {
    std::size_t n = 0;
    for (const segment& s : segments_) n += std::size_t(s.capacity) * sizeof(std::uint64_t);
    return n;
}

}  // namespace aq::batch_line
