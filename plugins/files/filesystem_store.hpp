// The filesystem content store: one regular file per content, in a folder (content_store.hpp).
//
// Layout: ROOT/ab/file-abXXXX..., the two characters after "file-" fanning the files out over at
// most 62 * 62 subfolders, so no folder grows past what every filesystem lists quickly.
//
// A write goes into an unnamed file in the target subfolder (O_TMPFILE): a crash, a refused
// upload or a client that goes away leaves nothing, since the kernel frees an unnamed file when
// its last descriptor closes. seal() then, in this order:
//   1. fdatasync()s the file (its bytes are on disk),
//   2. calls `intent` (the caller records the key in a "writing" row),
//   3. links the file under its final name (linkat through /proc/self/fd),
//   4. fsync()s the subfolder (the name is on disk),
// and only then does the caller commit the row that makes the file visible. A crash before 3
// leaves nothing; between 3 and the commit, a named file that the "writing" row points at, which
// the purge removes once the row's lease runs out. So a visible row always has its whole
// content on disk, across power loss too. With "fsync": false steps 1 and 4 are skipped: a
// process crash is still safe (the page cache survives it), a power loss may lose the content
// of files committed just before it.
//
// Where O_TMPFILE or linking an unnamed file is refused (some filesystems, a missing /proc),
// the store writes KEY.partial instead, after `intent` (so the purge knows it), and renames it.
// Which way this folder works is found once, when the store opens.
//
// Reads open the file and hand the descriptor to the host (respond_file: sendfile), or pread it
// for the files service. A file deleted while a download runs is still sent whole: the open
// descriptor keeps its content until the download ends.
#pragma once

#include "content_store.hpp"

#include <filesystem>

namespace aq::files {

class filesystem_store : public content_store {
public:
    // Creates `root` if needed and checks that it can hold files. Throws std::runtime_error
    // naming the folder and the reason.
    filesystem_store(std::filesystem::path root, bool fsync);

    std::string_view name() const noexcept override { return "filesystem"; }
    std::unique_ptr<content_writer> create(const std::string& key, std::uint64_t max_bytes,
                                           std::function<void()> intent) override;
    std::unique_ptr<content_reader> open(const file_record& file, std::uint64_t offset, std::uint64_t length) override;
    void remove(const std::string& key, bool abandoned) override;

    const std::filesystem::path& root() const noexcept { return root_; }
    // Where the content under `key` lives. Throws std::invalid_argument for a key that is not
    // "file-" and at least two more of [A-Za-z0-9._~-].
    std::filesystem::path path_of(const std::string& key) const;
    // Whether writes go through an unnamed file (false: KEY.partial).
    bool unnamed_files() const noexcept { return unnamed_; }

private:
    friend class filesystem_writer;
    // The subfolder of `key`, created (and made durable) on first use.
    std::filesystem::path folder_of(const std::string& key) const;
    void sync_folder(const std::filesystem::path& folder) const;

    std::filesystem::path root_;
    bool fsync_;
    bool unnamed_ = true;
};

}  // namespace aq::files
