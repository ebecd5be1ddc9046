// RAII C++ over the files service table (aqueduct/services/files.h): a reader that streams a
// stored file, a writer that creates one, and remove_file. Status codes become exceptions carrying the
// aq_status, so callers can tell "not found" from "store unavailable".
#pragma once

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace batches {

struct files_error : std::runtime_error {
    files_error(aq_status s, const std::string& what) : std::runtime_error(what), status(s) {}
    aq_status status;
};

class file_reader {
public:
    file_reader(const aq_files_v1& svc, std::string_view file_id, std::string_view owner) : svc_(svc) {
        aq_status st = svc_.open(svc_.ctx, aq::to_aq(file_id), aq::to_aq(owner), &reader_);
        if (st != AQ_OK) throw files_error(st, "cannot open file " + std::string(file_id));
    }
    ~file_reader() {
        if (reader_) svc_.close_reader(reader_);
    }
    file_reader(const file_reader&) = delete;
    file_reader& operator=(const file_reader&) = delete;

    const aq_file_info& info() const { return *svc_.reader_info(reader_); }
    std::string_view purpose() const { return aq::to_sv(info().purpose); }
    std::uint64_t bytes() const { return info().bytes; }

    // Next bytes into buf; 0 at the end.
    std::size_t read(char* buf, std::size_t cap) {
        std::int64_t n = svc_.read(reader_, buf, cap);
        if (n < 0) throw files_error(static_cast<aq_status>(-n), "reading the input file failed");
        return static_cast<std::size_t>(n);
    }

private:
    const aq_files_v1& svc_;
    aq_files_reader* reader_ = nullptr;
};

class file_writer {
public:
    file_writer(const aq_files_v1& svc, std::string_view owner, std::string_view filename, std::string_view purpose,
                std::int64_t expires_after_seconds)
        : svc_(svc) {
        aq_file_create p{};
        p.struct_size = sizeof p;
        p.owner = aq::to_aq(owner);
        p.filename = aq::to_aq(filename);
        p.purpose = aq::to_aq(purpose);
        p.expires_after_seconds = expires_after_seconds;
        aq_status st = svc_.create(svc_.ctx, &p, &writer_);
        if (st != AQ_OK) throw files_error(st, "cannot create file " + std::string(filename));
    }
    ~file_writer() {
        if (writer_) svc_.close_writer(writer_);
    }
    file_writer(const file_writer&) = delete;
    file_writer& operator=(const file_writer&) = delete;

    void write(std::string_view chunk) {
        aq_status st = svc_.write(writer_, aq::to_aq(chunk));
        if (st != AQ_OK) throw files_error(st, "writing a result file failed");
    }
    // Commits and returns the new file's id.
    std::string commit() {
        const aq_file_info* info = nullptr;
        aq_status st = svc_.commit(writer_, &info);
        if (st != AQ_OK || !info) throw files_error(st, "committing a result file failed");
        return std::string(aq::to_sv(info->id));
    }

private:
    const aq_files_v1& svc_;
    aq_files_writer* writer_ = nullptr;
};

// Deletes a file this plugin wrote. False when the files plugin is too old to offer remove or
// the file is already gone; throws files_error when the store is unavailable.
inline bool remove_file(const aq_files_v1& svc, std::string_view file_id, std::string_view owner) {
    const aq_files_v1* table = &svc;  // AQ_HAS_FIELD compares with NULL; a reference never is
    if (svc.struct_size < offsetof(aq_files_v1, remove) + sizeof table->remove || !svc.remove) return false;
    aq_status st = svc.remove(svc.ctx, aq::to_aq(file_id), aq::to_aq(owner));
    if (st == AQ_ERR_NOT_FOUND) return false;
    if (st != AQ_OK) throw files_error(st, "deleting file " + std::string(file_id) + " failed");
    return true;
}

}  // namespace batches
