#include "check_config.hpp"

#include "body_spool.hpp"
#include "config.hpp"
#include "loader.hpp"
#include "plugin_order.hpp"

namespace aqd {

int check_config(const std::filesystem::path& file, std::ostream& out, std::ostream& err) {
    config cfg;
    try {
        cfg = load_config(file);
    } catch (const config_error& e) {
        err << "invalid config: " << e.what() << "\n";
        return 2;
    }
    try {
        const std::vector<std::string> order = plugin_order(cfg.plugins);
        if (!order.empty() && cfg.plugin_dir.empty())
            throw load_error("plugin_dir: required when a plugin is enabled (plugins." + order.front() + ")");
        for (const std::string& name : order) load_plugin(cfg.plugin_dir, name);
        body_spool::check_dir(cfg.spool_dir);
    } catch (const std::exception& e) {
        err << e.what() << "\n";
        return 1;
    }
    out << effective_json(cfg, true, true);
    return 0;
}

}  // namespace aqd
