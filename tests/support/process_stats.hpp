// What /proc says about a running process (the gateway under test): resident memory, CPU time,
// open descriptors. Linux only, like the host.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aqt {

// A "NAME:   N kB" field of /proc/PID/status in KiB: "VmRSS" (resident now), "VmHWM" (peak
// resident). Throws std::runtime_error when the process or the field is missing.
long long status_kib(pid_t pid, std::string_view field);
// VmRSS in bytes; throws when the process is gone.
std::uint64_t resident_bytes(pid_t pid);
// User + system CPU time in seconds (utime + stime of /proc/PID/stat).
double cpu_seconds(pid_t pid);
// The targets of /proc/PID/fd/* ("socket:[123]", "/tmp/#456 (deleted)", ...).
std::vector<std::string> open_files(pid_t pid);

// Raises this process's soft RLIMIT_NOFILE to at least `wanted` (up to the hard limit; as root
// the hard limit is raised too). Returns the soft limit in effect.
std::uint64_t raise_open_file_limit(std::uint64_t wanted);

}  // namespace aqt
