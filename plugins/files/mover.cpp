#include "mover.hpp"

#include "test_pause.hpp"

#include <aqueduct/plugin.hpp>

#include <cstdio>

namespace aq::files {
namespace {

constexpr std::size_t copy_block = 1 << 20;

// Reads `reader` to its end into `sink`, returning the SHA-256 hex and the byte count.
template <class Sink>
std::pair<std::string, std::uint64_t> drain(content_reader& reader, std::string& buf, Sink&& sink) {
    sha256 hash;
    std::uint64_t total = 0;
    for (;;) {
        std::size_t n = reader.read(std::span<char>(buf.data(), buf.size()));
        if (n == 0) break;
        std::string_view piece(buf.data(), n);
        hash.update(piece);
        sink(piece);
        total += n;
    }
    return {hash.hex(), total};
}

}  // namespace

mover::mover(store& files, content_store& target, std::function<void(const move_progress&)> report,
             std::function<void(const std::string&)> warn)
    : files_(files), target_(target), report_(std::move(report)), warn_(std::move(warn)) {}

move_progress mover::run(const std::atomic<bool>& stop) {
    const auto started = std::chrono::steady_clock::now();
    const std::string target(target_.name());
    std::tie(progress_.files_total, progress_.bytes_total) = files_.count_outside(target);
    std::string after;
    while (!stop) {
        std::vector<file_record> batch = files_.files_outside(target, after, 100);
        if (batch.empty()) break;
        for (const file_record& f : batch) {
            if (stop) break;
            after = f.id;
            try {
                if (move_one(f)) {
                    ++progress_.files_moved;
                    progress_.bytes_moved += f.bytes;
                }
            } catch (const std::exception& e) {
                ++progress_.files_failed;
                if (warn_) warn_(f.id + " (" + f.store + ") was not moved: " + e.what());
            }
            progress_.elapsed = std::chrono::steady_clock::now() - started;
            if (report_) report_(progress_);
        }
    }
    progress_.elapsed = std::chrono::steady_clock::now() - started;
    return progress_;
}

bool mover::move_one(const file_record& file) {
    content_store& source = files_.stores().get(file.store);
    const std::string intent = aq::random_id("move-");
    // The database store's chunks belong to a row: the intent row until the switch re-keys them.
    const std::string key = target_.name() == "database" ? intent : file.id + "~" + aq::random_id("").substr(0, 8);
    files_.record_move_intent(intent, target_.name(), key);
    bool switched = false;
    try {
        std::string buf(copy_block, '\0');
        // Keeps the intent's lease while the copy and its check run (a large file, a slow store).
        auto last_renewal = std::chrono::steady_clock::now();
        auto renew_when_due = [&] {
            if (std::chrono::steady_clock::now() - last_renewal < files_.lease_renewal()) return;
            files_.renew_move_intent(intent);
            last_renewal = std::chrono::steady_clock::now();
        };
        {
            auto writer = target_.create(key, file.bytes, [] {});  // the intent is recorded already
            auto reader = source.open(file, 0, file.bytes);
            auto [sha, bytes] = drain(*reader, buf, [&](std::string_view piece) {
                writer->write(piece);
                renew_when_due();
            });
            if (bytes != file.bytes || sha != file.sha256)
                throw std::runtime_error("its content in the " + file.store + " store does not match its SHA-256");
            writer->seal();
        }
        // What is verified is what the target store now holds.
        file_record copy = file;
        copy.store = std::string(target_.name());
        copy.content_key = key;
        auto check = target_.open(copy, 0, file.bytes);
        auto [sha, bytes] = drain(*check, buf, [&](std::string_view) { renew_when_due(); });
        if (bytes != file.bytes || sha != file.sha256)
            throw std::runtime_error("the copy in the " + copy.store + " store does not match its SHA-256");
        // Test-only (test_pause.hpp): the copy is verified, the file's row not switched yet.
        pause_point("move_copied");
        switched = files_.switch_content(file, intent, target_, key);
    } catch (...) {
        files_.drop_content(intent, std::string(target_.name()), key, true);
        throw;
    }
    if (!switched) {
        // Deleted, expired or changed meanwhile: the copy goes, the file is left as it is.
        files_.drop_content(intent, std::string(target_.name()), key, true);
        return false;
    }
    // The intent row now stands for the old content.
    if (!files_.drop_content(intent, file.store, file.content_key, false) && warn_)
        warn_(file.id + ": its old content in the " + file.store + " store could not be removed yet; the purge will");
    return true;
}

std::string human_bytes(std::uint64_t bytes) {
    char buf[64];
    const double b = static_cast<double>(bytes);
    if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", b / (1ull << 30));
    else if (bytes >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1ull << 20));
    else if (bytes >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024);
    else std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
    return buf;
}

std::string describe(const move_progress& p) {
    const double seconds = std::chrono::duration<double>(p.elapsed).count();
    const double rate = seconds > 0 ? static_cast<double>(p.bytes_moved) / (1 << 20) / seconds : 0;
    const double percent = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_moved) / static_cast<double>(p.bytes_total)
                                         : 100.0;
    char tail[128];
    std::snprintf(tail, sizeof tail, ", %.0f%%), %.1f MiB/s, %llu failed", percent, rate,
                  static_cast<unsigned long long>(p.files_failed));
    return "moved " + std::to_string(p.files_moved) + " of " + std::to_string(p.files_total) + " files (" +
           human_bytes(p.bytes_moved) + " of " + human_bytes(p.bytes_total) + tail;
}

}  // namespace aq::files
