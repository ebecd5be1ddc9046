// The "files" v1 service (sdk/include/aqueduct/services/files.h) for other plugins.
//
// Readers and writers are the store's (store.hpp), on whatever content store the file is in (a
// reader) or new files go to (a writer), with the same guarantees as uploads: a writer's content
// is invisible until commit, and one closed without commit (or a crash) leaves nothing visible;
// no transaction is held while a producer writes, however long it takes.
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
