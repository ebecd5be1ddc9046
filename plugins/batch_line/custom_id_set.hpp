// The set of custom_ids seen in one batch file, exact and in bounded memory.
//
// Keeping every custom_id (up to 512 bytes each) would grow with the file: 2 million lines could
// take a gigabyte. Instead, memory holds one keyed 64-bit hash per id (SipHash-2-4 with a random
// key, in an open-addressing table split into 256 segments that grow one at a time, so growing
// never holds two copies of the whole table): about 8 bytes / 0.56 load = ~14 bytes per line,
// 28 MiB for 2 million lines.
//
// Equal hashes do not prove equal ids, so a hit is confirmed exactly: every id is also appended
// to a log (in memory up to 1 MiB, then in an anonymous temporary file in `scratch_dir`), and a
// hit scans the log for an earlier id with that hash and compares the bytes. Exact equality of
// decoded custom_ids is what "duplicate" means; the scan runs only for a real duplicate (which
// ends the validation) or a chance collision (about 1e-7 for 2 million ids), never for ids an
// uploader crafted, since the hash key is secret.
#pragma once

#include "batch_line/siphash.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace aq::batch_line {

class custom_id_set {
public:
    // `scratch_dir`: where the log spills past 1 MiB (empty: the system's temporary directory).
    // `hash_bits` < 64 keeps only that many bits of each hash: tests use it to force collisions
    // through the exact confirmation.
    explicit custom_id_set(std::filesystem::path scratch_dir = {}, unsigned hash_bits = 64);
    ~custom_id_set();
    custom_id_set(const custom_id_set&) = delete;
    custom_id_set& operator=(const custom_id_set&) = delete;

    // Adds `id`; false (and nothing added) when an equal id was added before. Throws
    // std::system_error when the log cannot be written or read.
    bool insert(std::string_view id);

    std::uint64_t size() const noexcept { return size_; }
    // Bytes held by the hash table (the figure that grows with the file).
    std::size_t table_bytes() const noexcept;

private:
    struct segment {
        std::unique_ptr<std::uint64_t[]> slots;  // 0 = empty
        std::uint32_t capacity = 0;              // a power of two
        std::uint32_t used = 0;
    };
    class id_log;

    // Finds `h` in its segment; inserts it when absent. True when it was absent.
    bool add_hash(std::uint64_t h);
    static void place(segment& s, std::uint64_t h) noexcept;
    void grow(segment& s);

    siphash_key key_;
    std::uint64_t hash_mask_;
    std::array<segment, 256> segments_;
    std::uint64_t size_ = 0;
    std::unique_ptr<id_log> log_;
};

}  // namespace aq::batch_line
