#include "content_stores.hpp"

#include "database_store.hpp"
#include "filesystem_store.hpp"
#include "s3_store.hpp"

#include <stdexcept>

namespace aq::files {

content_stores::content_stores(const config& cfg, sql::pool& pool, s3_store::retry_report on_s3_retry) {
    auto add = [this](std::unique_ptr<content_store> s) {
        std::string name(s->name());
        stores_.emplace(std::move(name), std::move(s));
    };
    add(std::make_unique<database_store>(pool));
    if (!cfg.filesystem.path.empty()) add(std::make_unique<filesystem_store>(cfg.filesystem.path, cfg.filesystem.fsync));
    if (cfg.s3) {
        try {
            add(std::make_unique<s3_store>(*cfg.s3, std::move(on_s3_retry)));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string("plugins.files.s3: ") + e.what());
        }
    }
    choose(cfg.store);
}

content_stores::content_stores(std::vector<std::unique_ptr<content_store>> stores, std::string_view current) {
    for (auto& s : stores) {
        std::string name(s->name());
        stores_.emplace(std::move(name), std::move(s));
    }
    choose(current);
}

void content_stores::choose(std::string_view name) { current_ = &get(name); }

content_store* content_stores::find(std::string_view name) const noexcept {
    auto it = stores_.find(name);
    return it == stores_.end() ? nullptr : it->second.get();
}

content_store& content_stores::get(std::string_view name) const {
    if (content_store* s = find(name)) return *s;
    throw std::runtime_error("the \"" + std::string(name) + "\" content store is not set up in plugins.files");
}

}  // namespace aq::files
