#include "service.hpp"

#include "upload.hpp"

#include <span>

// The opaque handles of services/files.h, defined by their provider.
struct aq_files_reader {
    std::unique_ptr<aq::files::store::reader> reader;
    aq_file_info info{};
};

struct aq_files_writer {
    aq::files::service* owner_service = nullptr;
    std::string filename, purpose;
    std::int64_t lifetime = 0;
    std::unique_ptr<aq::files::store::writer> writer;
    // AQ_OK, or why the content is incomplete (a refused or failed write): commit must not
    // succeed then, and says the same.
    aq_status failure = AQ_OK;
    bool committed = false;
    aq::files::file_record record;
    aq_file_info info{};
};

namespace aq::files {
namespace {

aq_file_info info_of(const file_record& r) {
    aq_file_info i{};
    i.struct_size = sizeof i;
    i.id = aq::to_aq(r.id);
    i.owner = aq::to_aq(r.owner);
    i.filename = aq::to_aq(r.filename);
    i.purpose = aq::to_aq(r.purpose);
    i.sha256 = aq::to_aq(r.sha256);
    i.bytes = r.bytes;
    i.created_at = r.created_at;
    i.expires_at = r.expires_at;
    return i;
}

// Every entry point catches everything: nothing crosses the C boundary.
template <class Fn>
aq_status guarded(const service& svc, const char* what, Fn fn) noexcept {
    try {
        return fn();
    } catch (const std::exception& e) {
        try {
            std::string message = e.what();
            if (message.size() > 500) message.resize(500);  // SOCI may quote whole parameters
            svc.host().error(std::string("files service ") + what + ": " + message);
        } catch (...) {
        }
    } catch (...) {
    }
    return AQ_ERR_UNAVAILABLE;
}

aq_status open_file(void* ctx, aq_str file_id, aq_str owner, aq_files_reader** out) noexcept {
    auto& svc = *static_cast<service*>(ctx);
    if (!out) return AQ_ERR_INVALID;
    *out = nullptr;
    return guarded(svc, "open", [&] {
        auto reader = svc.files().open(aq::to_sv(owner), aq::to_sv(file_id));
        if (!reader) return AQ_ERR_NOT_FOUND;
        try {
            reader->open_range(0, reader->info().bytes);
        } catch (const store::gone&) {
            return AQ_ERR_NOT_FOUND;
        }
        auto handle = std::make_unique<aq_files_reader>();
        handle->reader = std::move(reader);
        handle->info = info_of(handle->reader->info());
        *out = handle.release();
        return AQ_OK;
    });
}

const aq_file_info* reader_info(aq_files_reader* r) noexcept { return r ? &r->info : nullptr; }

int64_t read_file(aq_files_reader* r, void* buf, size_t cap) noexcept {
    if (!r || (!buf && cap)) return -AQ_ERR_INVALID;
    try {
        return static_cast<int64_t>(r->reader->read(std::span<char>(static_cast<char*>(buf), cap)));
    } catch (const store::gone&) {
        return -AQ_ERR_NOT_FOUND;
    } catch (...) {
        return -AQ_ERR_UNAVAILABLE;
    }
}

void close_reader(aq_files_reader* r) noexcept { delete r; }

aq_status create_file(void* ctx, const aq_file_create* params, aq_files_writer** out) noexcept {
    auto& svc = *static_cast<service*>(ctx);
    if (!out) return AQ_ERR_INVALID;
    *out = nullptr;
    if (!AQ_HAS_FIELD(params, aq_file_create, expires_after_seconds)) return AQ_ERR_INVALID;
    return guarded(svc, "create", [&] {
        auto w = std::make_unique<aq_files_writer>();
        w->owner_service = &svc;
        std::string owner(aq::to_sv(params->owner));
        w->filename = std::string(aq::to_sv(params->filename));
        w->purpose = std::string(aq::to_sv(params->purpose));
        if (owner.empty() || w->purpose.empty() || !filename_problem(w->filename).empty()) return AQ_ERR_INVALID;
        if (params->expires_after_seconds < 0) return AQ_ERR_INVALID;
        w->lifetime = params->expires_after_seconds ? params->expires_after_seconds
                                                    : svc.settings().default_expiry_seconds;
        w->writer = svc.files().create(std::move(owner), svc.settings().max_output_file_bytes);
        *out = w.release();
        return AQ_OK;
    });
}

aq_status write_file(aq_files_writer* w, aq_str chunk) noexcept {
    if (!w || w->committed) return AQ_ERR_STATE;
    if (w->failure != AQ_OK) return w->failure;
    if (w->writer->bytes() + chunk.len > w->owner_service->settings().max_output_file_bytes)
        return w->failure = AQ_ERR_LIMIT;
    try {
        w->writer->write(aq::to_sv(chunk));
    } catch (...) {
        return w->failure = AQ_ERR_UNAVAILABLE;
    }
    return AQ_OK;
}

aq_status commit_file(aq_files_writer* w, const aq_file_info** info) noexcept {
    if (!w || w->committed) return AQ_ERR_STATE;
    if (w->failure != AQ_OK) return w->failure;
    auto& svc = *w->owner_service;
    return guarded(svc, "commit", [&] {
        w->record = w->writer->commit(w->filename, w->purpose, w->lifetime, {});
        w->committed = true;
        w->info = info_of(w->record);
        if (info) *info = &w->info;
        return AQ_OK;
    });
}

void close_writer(aq_files_writer* w) noexcept { delete w; }

aq_status remove_file(void* ctx, aq_str file_id, aq_str owner) noexcept {
    auto& svc = *static_cast<service*>(ctx);
    return guarded(svc, "remove", [&] {
        return svc.files().remove(aq::to_sv(owner), aq::to_sv(file_id)) ? AQ_OK : AQ_ERR_NOT_FOUND;
    });
}

}  // namespace

service::service(const aq::host& host, const config& cfg, store& files) : host_(host), cfg_(cfg), files_(files) {
    table_.struct_size = sizeof table_;
    table_.ctx = this;
    table_.open = &open_file;
    table_.reader_info = &reader_info;
    table_.read = &read_file;
    table_.close_reader = &close_reader;
    table_.create = &create_file;
    table_.write = &write_file;
    table_.commit = &commit_file;
    table_.close_writer = &close_writer;
    table_.remove = &remove_file;
}

}  // namespace aq::files
