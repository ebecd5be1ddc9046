// Versioned C tables that one plugin offers another (see sdk/include/aqueduct/services/).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace aqd {

class service_registry {
public:
    // false when (name, version) is already published.
    bool add(std::string_view name, std::uint32_t version, const void* table, std::string_view provider);
    // nullptr when absent.
    const void* find(std::string_view name, std::uint32_t version) const;
    // The plugin that published name (any version); empty when none.
    std::string provider(std::string_view name) const;

private:
    struct entry {
        const void* table;
        std::string provider;
    };
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::uint32_t>, entry, std::less<>> entries_;
};

}  // namespace aqd
