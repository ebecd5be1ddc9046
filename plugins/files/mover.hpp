// Moves files from whatever content store they are in to another one, beside a gateway that
// keeps serving them (aqueduct-files move; content_store.hpp, store.hpp).
//
// For each ready file outside the target store, in id order:
//   1. record a move intent: a "writing" row with a lease that names the new content's key
//      (the file's id plus a fresh suffix; in the database store the intent row's own id, since
//      chunks must belong to a row), so a move that dies leaves nothing the purge cannot find;
//   2. copy the content, checking its SHA-256 and size against the row as it streams;
//   3. seal it, then read it back from the target store and check its SHA-256 again (what is
//      verified is what is stored, not what was sent);
//   4. switch the file's row to the new store and key in one short transaction, which only
//      succeeds if the row is still the one read in 1 (not deleted, expired or moved meanwhile),
//      and which turns the intent row into a "deleting" row for the old content;
//   5. remove the old content and that row (or leave both to the purge if the old store fails).
// A reader that was streaming the old content when it went follows the row to the new store at
// the same offset (store::reader), so downloads in flight are not cut off. A file that fails is
// counted and left where it was; running the move again resumes with what is left.
#pragma once

#include "store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace aq::files {

struct move_progress {
    std::uint64_t files_total = 0, bytes_total = 0;  // what was outside the target at the start
    std::uint64_t files_moved = 0, bytes_moved = 0;
    std::uint64_t files_failed = 0;
    std::chrono::steady_clock::duration elapsed{};
};

class mover {
public:
    // `report` is called after every file (the caller throttles what it prints); `warn` with
    // each file that could not be moved and why.
    mover(store& files, content_store& target, std::function<void(const move_progress&)> report,
          std::function<void(const std::string&)> warn);

    // Moves every ready file outside the target store, until done or `stop` becomes true (the
    // file being moved is finished first). Files uploaded meanwhile into another store are
    // taken too when they sort after the last one moved; the next run takes the rest.
    move_progress run(const std::atomic<bool>& stop);

private:
    // Throws with the reason the file could not be moved; false when it changed meanwhile.
    bool move_one(const file_record& file);

    store& files_;
    content_store& target_;
    std::function<void(const move_progress&)> report_;
    std::function<void(const std::string&)> warn_;
    move_progress progress_;
};

// "1.5 GiB", "320.0 MiB", "12 bytes"
std::string human_bytes(std::uint64_t bytes);
// One line: "moved 12 of 40 files (1.2 of 4.0 GiB, 30%), 85.3 MiB/s, 0 failed"
std::string describe(const move_progress& p);

}  // namespace aq::files
