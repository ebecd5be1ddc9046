// The "files" v1 service (sdk/include/aqueduct/services/files.h) for other plugins.
//
// Readers read through the store chunk by chunk. Writers spool content to an anonymous temporary
// file and only open the database transaction at commit, copying the spool into the store in
// one go: a producer such as the batches plugin may take hours to write its output, and holding
// a transaction (on SQLite, the database's single write lock) that long would stall every other
// writer.
//
// Service writes are the gateway's own output (batch results), so they follow their own limits:
// up to max_output_file_bytes (not the upload limit max_file_bytes), and never refused for the
// owner's quota, since refusing them would lose paid-for work. Once stored they count toward
// that quota like any file: an owner pushed over it can still read and delete, and their next
// upload gets 413 until they make room.
#pragma once

#include "config.hpp"
#include "store.hpp"

#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

namespace aq::files {

class service {
public:
    service(const aq::host& host, const config& cfg, store& files);
    const aq_files_v1* table() const noexcept { return &table_; }

    const aq::host& host() const noexcept { return host_; }
    const config& settings() const noexcept { return cfg_; }
    store& files() noexcept { return files_; }

private:
    aq::host host_;
    const config& cfg_;
    store& files_;
    aq_files_v1 table_{};
};

}  // namespace aq::files
