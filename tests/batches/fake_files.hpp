// An in-memory files service (aqueduct/services/files.h) and a minimal host table, so the
// batches plugin's core can be tested without aqueductd.
#pragma once

#include <aqueduct/abi.h>
#include <aqueduct/plugin.hpp>
#include <aqueduct/services/files.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aqt {

class fake_files {
public:
    struct file {
        std::string id, owner, filename, purpose, content;
        std::int64_t expires_after = 0;
    };

    fake_files() {
        table_.struct_size = sizeof table_;
        table_.ctx = this;
        table_.open = &open;
        table_.reader_info = &reader_info;
        table_.read = &read;
        table_.close_reader = &close_reader;
        table_.create = &create;
        table_.write = &write;
        table_.commit = &commit;
        table_.close_writer = &close_writer;
        table_.remove = &remove_file;
    }

    const aq_files_v1& table() const { return table_; }

    std::string add(const std::string& owner, const std::string& content, const std::string& purpose = "batch") {
        std::lock_guard lock(mu_);
        std::string id = "file-" + std::to_string(++next_);
        files_[id] = file{id, owner, "input.jsonl", purpose, content, 0};
        return id;
    }
    void remove(const std::string& id) {
        std::lock_guard lock(mu_);
        files_.erase(id);
    }
    std::optional<file> get(const std::string& id) {
        std::lock_guard lock(mu_);
        auto it = files_.find(id);
        if (it == files_.end()) return std::nullopt;
        return it->second;
    }
    // Files with this purpose, in id order.
    std::vector<file> with_purpose(const std::string& purpose) {
        std::lock_guard lock(mu_);
        std::vector<file> out;
        for (const auto& [id, f] : files_)
            if (f.purpose == purpose) out.push_back(f);
        return out;
    }
    // create() answers this status instead of AQ_OK when set (a quota, an outage).
    std::atomic<int> refuse_create{AQ_OK};
    // Makes reads of any file fail with "not found" after `bytes` bytes (deleted meanwhile).
    std::atomic<long long> vanish_after{-1};
    // Each read() of a stored file sleeps this long first (a slow store, a long validation).
    std::atomic<int> read_delay_ms{0};
    // Holds the next commit() until release_commit(): a host stalled in the middle of writing
    // its result file.
    void hold_next_commit() {
        std::lock_guard lock(mu_);
        hold_pending_ = true;
        holding_ = released_ = false;
    }
    bool wait_until_commit_held(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [this] { return holding_; });
    }
    void release_commit() {
        {
            std::lock_guard lock(mu_);
            released_ = true;
        }
        cv_.notify_all();
    }

private:
    struct reader {
        fake_files* self;
        file f;
        std::size_t pos = 0;
        aq_file_info info{};
    };
    struct writer {
        fake_files* self;
        file f;
        aq_file_info info{};
    };

    static void fill(aq_file_info& i, const file& f) {
        i.struct_size = sizeof i;
        i.id = aq::to_aq(f.id);
        i.owner = aq::to_aq(f.owner);
        i.filename = aq::to_aq(f.filename);
        i.purpose = aq::to_aq(f.purpose);
        i.bytes = f.content.size();
    }

    static aq_status open(void* ctx, aq_str id, aq_str owner, aq_files_reader** out) {
        auto* self = static_cast<fake_files*>(ctx);
        std::lock_guard lock(self->mu_);
        auto it = self->files_.find(std::string(aq::to_sv(id)));
        if (it == self->files_.end() || it->second.owner != aq::to_sv(owner)) return AQ_ERR_NOT_FOUND;
        auto* r = new reader{self, it->second};
        fill(r->info, r->f);
        *out = reinterpret_cast<aq_files_reader*>(r);
        return AQ_OK;
    }
    static const aq_file_info* reader_info(aq_files_reader* rd) { return &reinterpret_cast<reader*>(rd)->info; }
    static int64_t read(aq_files_reader* rd, void* buf, size_t cap) {
        auto* r = reinterpret_cast<reader*>(rd);
        if (int ms = r->self->read_delay_ms.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        long long vanish = r->self->vanish_after.load();
        if (vanish >= 0 && r->pos >= static_cast<std::size_t>(vanish)) return -AQ_ERR_NOT_FOUND;
        std::size_t n = std::min(cap, std::min<std::size_t>(r->f.content.size() - r->pos, 1000));
        std::memcpy(buf, r->f.content.data() + r->pos, n);
        r->pos += n;
        return static_cast<int64_t>(n);
    }
    static void close_reader(aq_files_reader* rd) { delete reinterpret_cast<reader*>(rd); }
    static aq_status create(void* ctx, const aq_file_create* p, aq_files_writer** out) {
        auto* self = static_cast<fake_files*>(ctx);
        if (self->refuse_create.load() != AQ_OK) return static_cast<aq_status>(self->refuse_create.load());
        auto* w = new writer{self, file{}};
        w->f.owner = std::string(aq::to_sv(p->owner));
        w->f.filename = std::string(aq::to_sv(p->filename));
        w->f.purpose = std::string(aq::to_sv(p->purpose));
        w->f.expires_after = p->expires_after_seconds;
        *out = reinterpret_cast<aq_files_writer*>(w);
        return AQ_OK;
    }
    static aq_status write(aq_files_writer* wr, aq_str chunk) {
        reinterpret_cast<writer*>(wr)->f.content.append(aq::to_sv(chunk));
        return AQ_OK;
    }
    static aq_status commit(aq_files_writer* wr, const aq_file_info** info) {
        auto* w = reinterpret_cast<writer*>(wr);
        std::unique_lock lock(w->self->mu_);
        if (w->self->hold_pending_) {
            w->self->hold_pending_ = false;  // only this one
            w->self->holding_ = true;
            w->self->cv_.notify_all();
            w->self->cv_.wait(lock, [&] { return w->self->released_; });
            w->self->holding_ = false;
        }
        w->f.id = "file-" + std::to_string(++w->self->next_);
        w->self->files_[w->f.id] = w->f;
        fill(w->info, w->f);
        if (info) *info = &w->info;
        return AQ_OK;
    }
    static void close_writer(aq_files_writer* wr) { delete reinterpret_cast<writer*>(wr); }
    static aq_status remove_file(void* ctx, aq_str id, aq_str owner) {
        auto* self = static_cast<fake_files*>(ctx);
        std::lock_guard lock(self->mu_);
        auto it = self->files_.find(std::string(aq::to_sv(id)));
        if (it == self->files_.end() || it->second.owner != aq::to_sv(owner)) return AQ_ERR_NOT_FOUND;
        self->files_.erase(it);
        return AQ_OK;
    }

    aq_files_v1 table_{};
    std::mutex mu_;
    std::condition_variable cv_;
    bool hold_pending_ = false, holding_ = false, released_ = false;
    std::map<std::string, file> files_;
    int next_ = 0;
};

// A host table with what the runner uses outside requests: log (kept) and stopping.
class fake_host {
public:
    fake_host() {
        api_.struct_size = sizeof api_;
        api_.abi_major = AQ_ABI_MAJOR;
        api_.abi_minor = AQ_ABI_MINOR;
        api_.host = reinterpret_cast<aq_host*>(this);
        api_.log = [](aq_host* h, aq_log_level, aq_str m) {
            auto* self = reinterpret_cast<fake_host*>(h);
            std::lock_guard lock(self->mu_);
            self->log_.emplace_back(m.data, m.len);
        };
        api_.stopping = [](aq_host* h) { return reinterpret_cast<fake_host*>(h)->stop.load(); };
    }
    aq::host host() const { return aq::host(&api_); }
    std::atomic<bool> stop{false};
    // Every message logged so far, in order.
    std::vector<std::string> log() const {
        std::lock_guard lock(mu_);
        return log_;
    }

private:
    aq_host_api api_{};
    mutable std::mutex mu_;
    std::vector<std::string> log_;
};

}  // namespace aqt
