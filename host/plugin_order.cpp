#include "plugin_order.hpp"

#include <algorithm>
#include <set>

namespace aqd {

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string> plugin_order(const std::vector<plugin_config>& plugins) {
    std::vector<const plugin_config*> pending;
    std::set<std::string> enabled;
    for (const plugin_config& p : plugins) {
        if (!p.enabled) continue;
        pending.push_back(&p);
        enabled.insert(p.name);
    }
    for (const plugin_config* p : pending)
        for (const std::string& r : p->requires_)
            if (!enabled.contains(r))
                throw plugin_order_error("plugin " + p->name + " requires " + r + ", which is not enabled");

    // Repeatedly take the first plugin in file order whose requirements are all initialised:
    // a stable topological order, so the file decides wherever dependencies leave a choice.
    std::vector<std::string> order;
    while (!pending.empty()) {
        const auto ready = std::find_if(pending.begin(), pending.end(), [&](const plugin_config* p) {
            return std::all_of(p->requires_.begin(), p->requires_.end(),
                               [&](const std::string& r) { return contains(order, r); });
        });
        if (ready != pending.end()) {
            order.push_back((*ready)->name);
            pending.erase(ready);
            continue;
        }

        // Every pending plugin waits for another pending one, so following the first unmet
        // requirement from any of them must come back to a plugin already on the path.
        const auto by_name = [&](const std::string& name) {
            return *std::find_if(pending.begin(), pending.end(),
                                 [&](const plugin_config* p) { return p->name == name; });
        };
        std::vector<std::string> path;
        const plugin_config* at = pending.front();
        while (!contains(path, at->name)) {
            path.push_back(at->name);
            const auto next = std::find_if(at->requires_.begin(), at->requires_.end(),
                                           [&](const std::string& r) { return !contains(order, r); });
            at = by_name(*next);
        }
        std::string message = "plugin cycle: ";
        for (auto it = std::find(path.begin(), path.end(), at->name); it != path.end(); ++it)
            message += *it + " -> ";
        message += at->name;
        throw plugin_order_error(message);
    }
    return order;
}

}  // namespace aqd
