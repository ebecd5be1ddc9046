#include "service_registry.hpp"

namespace aqd {

bool service_registry::add(std::string_view name, std::uint32_t version, const void* table,
                           std::string_view provider) {
    std::lock_guard lock(mutex_);
    std::pair<std::string, std::uint32_t> key{std::string(name), version};
    return entries_.try_emplace(std::move(key), entry{table, std::string(provider)}).second;
}

const void* service_registry::find(std::string_view name, std::uint32_t version) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(std::pair{std::string(name), version});
    return it == entries_.end() ? nullptr : it->second.table;
}

std::string service_registry::provider(std::string_view name) const {
    std::lock_guard lock(mutex_);
    // Keys sort by name first, so the first key not below (name, 0) is name's lowest version.
    const auto it = entries_.lower_bound(std::pair{std::string(name), std::uint32_t{0}});
    if (it == entries_.end() || it->first.first != name) return {};
    return it->second.provider;
}

}  // namespace aqd
