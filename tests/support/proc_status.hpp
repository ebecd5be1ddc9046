// Reading a process's memory figures from /proc/PID/status, for tests and benchmarks that bound
// or report the gateway's memory.
#pragma once

#include <string_view>
#include <sys/types.h>

namespace aqt {

// A "NAME:   N kB" field of /proc/PID/status in KiB: "VmRSS" (resident now), "VmHWM" (peak
// resident). Throws std::runtime_error when the process or the field is missing.
long long proc_status_kib(pid_t pid, std::string_view field);

}  // namespace aqt
