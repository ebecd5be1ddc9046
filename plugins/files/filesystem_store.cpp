#include "filesystem_store.hpp"

#include "unique_fd.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace aq::files {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
    throw std::system_error(err, std::generic_category(), what);
}

void write_all(int fd, std::string_view data, const std::filesystem::path& where) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("writing a file in " + where.string(), errno);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// An unnamed file in `folder`, or -1 with errno set.
int open_unnamed(const std::filesystem::path& folder) {
    return ::open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
}

// Gives the unnamed file `fd` the name `path`.
int link_unnamed(int fd, const std::filesystem::path& path) {
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    return ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
}

bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '~' || c == '-';
}

}  // namespace

// ---- writer --------------------------------------------------------------------------------

class filesystem_writer : public content_writer {
public:
    filesystem_writer(const filesystem_store& store, const std::string& key, std::function<void()> intent)
        : store_(store), path_(store.path_of(key)), intent_(std::move(intent)) {
        const std::filesystem::path folder = store_.folder_of(key);
        if (store_.unnamed_) {
            fd_.reset(open_unnamed(folder));
            if (!fd_) fail("creating an unnamed file in " + folder.string(), errno);
        } else {
            // A named file exists from here on: the purge must know it first.
            intent_();
            intent_ = nullptr;
            partial_ = path_;
            partial_ += ".partial";
            fd_.reset(::open(partial_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640));
            if (!fd_) fail("creating " + partial_.string(), errno);
        }
    }

    ~filesystem_writer() override {
        if (sealed_ || partial_.empty()) return;  // an unnamed file vanishes with its descriptor
        fd_.reset();
        ::unlink(partial_.c_str());
    }

    void write(std::string_view data) override {
        write_all(fd_.get(), data, path_.parent_path());
        written_ += data.size();
        // Starts the writeback of every full 8 MiB as it is written (asynchronous: it does not
        // wait for the disk), so seal()'s fdatasync waits for the last few MiB, not for the whole
        // file at once: a 1 GiB upload otherwise spent a second or more in that one call after
        // its last byte. Best effort: a failure here is found by the fdatasync.
        if (store_.fsync_ && written_ - writeback_from_ >= writeback_bytes) {
            (void)::sync_file_range(fd_.get(), static_cast<off_t>(writeback_from_),
                                    static_cast<off_t>(written_ - writeback_from_), SYNC_FILE_RANGE_WRITE);
            writeback_from_ = written_;
        }
    }

    // In the kernel, from the part's file to the end of this one (reflinked on filesystems that
    // share extents). A filesystem that refuses copy_file_range before the first byte leaves it
    // to the caller's streamed copy.
    bool append(content_store& from, const file_record& part, bool) override {
        if (&from != static_cast<const content_store*>(&store_)) return false;
        const std::filesystem::path source = store_.path_of(part.content_key);
        unique_fd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) {
            if (errno == ENOENT) throw content_gone("no stored file " + source.string());
            fail("opening " + source.string(), errno);
        }
        off_t offset = 0;
        std::uint64_t left = part.bytes;
        while (left > 0) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, 1ull << 30));
            ssize_t n = ::copy_file_range(in.get(), &offset, fd_.get(), nullptr, want, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (offset == 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
                    return false;
                fail("copying " + source.string(), errno);
            }
            if (n == 0) throw content_gone("the stored file " + source.string() + " ended before its recorded size");
            left -= static_cast<std::uint64_t>(n);
        }
        return true;
    }

    void seal() override {
        if (store_.fsync_ && ::fdatasync(fd_.get()) != 0) fail("fdatasync of " + path_.string(), errno);
        if (partial_.empty()) {
            intent_();
            if (link_unnamed(fd_.get(), path_) != 0) fail("naming " + path_.string(), errno);
        } else if (::rename(partial_.c_str(), path_.c_str()) != 0) {
            fail("renaming " + partial_.string(), errno);
        }
        sealed_ = true;
        fd_.reset();
        store_.sync_folder(path_.parent_path());
    }

private:
    const filesystem_store& store_;
    std::filesystem::path path_, partial_;
    std::function<void()> intent_;
    unique_fd fd_;
    bool sealed_ = false;
    static constexpr std::uint64_t writeback_bytes = 8 << 20;
    std::uint64_t written_ = 0, writeback_from_ = 0;
};

// ---- reader --------------------------------------------------------------------------------

class filesystem_reader : public content_reader {
public:
    filesystem_reader(unique_fd fd, std::uint64_t offset, std::uint64_t length)
        : fd_(std::move(fd)), offset_(offset), left_(length) {}

    std::size_t read(std::span<char> buf) override {
        if (left_ == 0 || buf.empty()) return 0;
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), left_));
        for (;;) {
            ssize_t n = ::pread(fd_.get(), buf.data(), want, static_cast<off_t>(offset_));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail("reading a stored file", errno);
            if (n == 0) throw content_gone("a stored file ended before its recorded size");
            offset_ += static_cast<std::uint64_t>(n);
            left_ -= static_cast<std::uint64_t>(n);
            return static_cast<std::size_t>(n);
        }
    }

    int release_file() override { return fd_.release(); }

private:
    unique_fd fd_;
    std::uint64_t offset_, left_;
};

// ---- store ---------------------------------------------------------------------------------

filesystem_store::filesystem_store(std::filesystem::path root, bool fsync) : root_(std::move(root)), fsync_(fsync) {
    std::error_code ec;
    std::filesystem::create_directories(root_, ec);
    if (ec) throw std::runtime_error("the filesystem store cannot create " + root_.string() + ": " + ec.message());
    if (!std::filesystem::is_directory(root_, ec))
        throw std::runtime_error("the filesystem store's path is not a folder: " + root_.string());
    // Find once whether this folder takes unnamed files that can be linked, by doing it.
    unique_fd probe(open_unnamed(root_));
    if (probe) {
        const std::filesystem::path name = root_ / (".probe-" + std::to_string(::getpid()));
        ::unlink(name.c_str());
        if (link_unnamed(probe.get(), name) == 0) ::unlink(name.c_str());
        else unnamed_ = false;
    } else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
        unnamed_ = false;
    } else {
        throw std::runtime_error("the filesystem store cannot write in " + root_.string() + ": " +
                                 std::strerror(errno));
    }
    if (!unnamed_) {
        // Check plain files instead.
        const std::filesystem::path name = root_ / (".probe-" + std::to_string(::getpid()));
        unique_fd f(::open(name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640));
        if (!f)
            throw std::runtime_error("the filesystem store cannot write in " + root_.string() + ": " +
                                     std::strerror(errno));
        ::unlink(name.c_str());
    }
}

std::filesystem::path filesystem_store::path_of(const std::string& key) const {
    bool ok = key.size() >= 7 && key.starts_with("file-");
    for (char c : key) ok = ok && key_char(c);
    if (!ok) throw std::invalid_argument("not a content key of the filesystem store: " + key);
    return root_ / key.substr(5, 2) / key;
}

std::filesystem::path filesystem_store::folder_of(const std::string& key) const {
    std::filesystem::path folder = path_of(key).parent_path();
    if (::mkdir(folder.c_str(), 0750) == 0) sync_folder(root_);  // the new subfolder's own name
    else if (errno != EEXIST) fail("creating " + folder.string(), errno);
    return folder;
}

void filesystem_store::sync_folder(const std::filesystem::path& folder) const {
    if (!fsync_) return;
    unique_fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsync(dir.get()) != 0) fail("fsync of " + folder.string(), errno);
}

std::unique_ptr<content_writer> filesystem_store::create(const std::string& key, std::uint64_t /*max_bytes*/,
                                       std::function<void()> intent) {
    return std::make_unique<filesystem_writer>(*this, key, std::move(intent));
}

std::unique_ptr<content_reader> filesystem_store::open(const file_record& file, std::uint64_t offset,
                                                       std::uint64_t length) {
    const std::filesystem::path path = path_of(file.content_key);
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) throw content_gone("no stored file " + path.string());
        fail("opening " + path.string(), errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail("stat of " + path.string(), errno);
    if (static_cast<std::uint64_t>(st.st_size) != file.bytes)
        throw std::runtime_error("the stored file " + path.string() + " has " + std::to_string(st.st_size) +
                                 " bytes, its row says " + std::to_string(file.bytes));
    return std::make_unique<filesystem_reader>(std::move(fd), offset, length);
}

void filesystem_store::remove(const std::string& key, bool abandoned) {
    const std::filesystem::path path = path_of(key);
    bool removed = false;
    if (::unlink(path.c_str()) == 0) removed = true;
    else if (errno != ENOENT) fail("removing " + path.string(), errno);
    if (abandoned) {
        std::filesystem::path partial = path;
        partial += ".partial";
        if (::unlink(partial.c_str()) == 0) removed = true;
        else if (errno != ENOENT) fail("removing " + partial.string(), errno);
    }
    // Made durable before the caller deletes the row: a power loss must not bring back a file
    // that no row points at any more.
    if (removed) sync_folder(path.parent_path());
}

}  // namespace aq::files
