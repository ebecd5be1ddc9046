#include "spool.hpp"

#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace aq::files {

spool::spool(const std::filesystem::path& folder) {
    fd_ = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        // A file system without O_TMPFILE: a named file, unlinked at once.
        std::string name = (folder / "aq-spool-XXXXXX").string();
        fd_ = ::mkostemp(name.data(), O_CLOEXEC);
        if (fd_ >= 0) ::unlink(name.c_str());
    }
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot stage an upload in " + folder.string());
}

spool::~spool() {
    if (fd_ >= 0) ::close(fd_);
}

void spool::append(std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(size_));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "staging an upload");
        }
        size_ += static_cast<std::uint64_t>(n);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::size_t spool::read_at(std::uint64_t offset, char* buf, std::size_t cap) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(cap, size_ - offset));
    std::size_t got = 0;
    while (got < want) {
        ssize_t n = ::pread(fd_, buf + got, want - got, static_cast<off_t>(offset + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "reading a staged upload");
        got += static_cast<std::size_t>(n);
    }
    return got;
}

}  // namespace aq::files
