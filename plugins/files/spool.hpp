// An anonymous temporary file that holds content until it can be written to the database in one
// short transaction.
//
// SQLite has one writer at a time: an upload that wrote into its transaction while the client
// was still sending would hold the lock for the whole network transfer, and every other upload
// and the batch runner would wait (and fail after the busy timeout). Staging the content here
// first keeps the transaction as short as a local copy.
//
// The file is created in the given folder (the database's, so staging uses the same disk and
// never a RAM-backed /tmp) with O_TMPFILE, so it has no name and disappears when closed, even
// after a crash. Memory stays one read block whatever the size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace aq::files {

class spool {
public:
    // Throws std::system_error when the folder cannot hold a temporary file.
    explicit spool(const std::filesystem::path& folder);
    ~spool();
    spool(const spool&) = delete;
    spool& operator=(const spool&) = delete;

    void append(std::string_view data);
    std::uint64_t size() const noexcept { return size_; }

    // Reads the content back from the start, `block` bytes at a time (the last may be shorter).
    template <class Fn>
    void replay(std::size_t block, Fn&& consume) {
        std::string buf(block, '\0');
        for (std::uint64_t offset = 0; offset < size_;) {
            std::size_t n = read_at(offset, buf.data(), block);
            consume(std::string_view(buf.data(), n));
            offset += n;
        }
    }

private:
    std::size_t read_at(std::uint64_t offset, char* buf, std::size_t cap);

    int fd_ = -1;
    std::uint64_t size_ = 0;
};

}  // namespace aq::files
