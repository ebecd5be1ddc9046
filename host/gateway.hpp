// The running host: puts config, auth, router, scheduler, services, plugins and the HTTP server
// together, serves until SIGTERM/SIGINT, then shuts down in order.
#pragma once

#include "config.hpp"

namespace aqd {

// Blocks until a termination signal; returns the process exit status. The caller must have
// blocked SIGTERM and SIGINT in every thread (sigprocmask before any thread exists): the gateway
// waits for them with sigwait, so no signal handler runs in a random thread.
int run_gateway(const config& cfg);

}  // namespace aqd
