// The running host: puts config, auth, router, scheduler, services, plugins, metrics, the access
// log and the HTTP server together, serves until SIGTERM/SIGINT, then shuts down in order.
//
// Signals: SIGHUP reloads what can change without a restart (README, "Reload without a
// restart": tokens, TLS certificate and key, log_level, access_log) from the config file, and
// reopens the access log; SIGUSR1 only reopens the access log (logrotate).
#pragma once

#include "config.hpp"

#include <filesystem>

#include <signal.h>

namespace aqd {

// The signals the gateway waits for. The caller blocks them in every thread (pthread_sigmask
// before any thread exists): the gateway takes them with sigwait on its own thread, so no
// signal handler runs in a random thread.
sigset_t gateway_signals();

// Blocks until a termination signal; returns the process exit status. `config_file` is read
// again on SIGHUP.
int run_gateway(const config& cfg, const std::filesystem::path& config_file);

}  // namespace aqd
