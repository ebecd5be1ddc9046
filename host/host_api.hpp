// The host side of abi.h: the function table each plugin receives in init.
//
// Each plugin gets its own aq_host (its name for log lines, its config section, its last error)
// and its own copy of the table, all pointing at the shared parts below.
#pragma once

#include "aqueduct/abi.h"

#include <atomic>
#include <string>

namespace aqd {

class router;
class scheduler;
class service_registry;
class readiness;
struct host_metrics;

// What the table's functions reach. Owned by the gateway, outlives every plugin.
struct host_context {
    router& routes;
    scheduler& jobs;
    service_registry& services;
    std::atomic<bool>& stopping;
    host_metrics& metrics;  // the registry plugins add to, and the job metrics
    readiness& checks;
};

}  // namespace aqd

// The host completes the ABI's opaque type.
struct aq_host {
    aqd::host_context* context = nullptr;
    std::string plugin;       // the config key, e.g. "files"
    std::string config_json;  // the plugin's section
    std::string error;        // set_error's last text
    bool registering = true;  // routes, jobs and services only during init
    aq_host_api api{};
};

namespace aqd {

// Fills host.api for this host.
void bind_host_api(aq_host& host);

}  // namespace aqd
