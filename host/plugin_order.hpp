// The order plugins are initialised in: every plugin after the plugins it `requires`.
//
// Shutdown walks the same list backwards. A requirement on a plugin that is not enabled, or a
// cycle, is refused with a message naming the plugins involved
// ("plugin cycle: a -> b -> a", "plugin batches requires files, which is not enabled").
#pragma once

#include "config.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace aqd {

struct plugin_order_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Returns the names of the enabled plugins in init order; ties keep file order.
std::vector<std::string> plugin_order(const std::vector<plugin_config>& plugins);

}  // namespace aqd
