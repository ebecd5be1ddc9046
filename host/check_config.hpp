// `aqueductd check-config FILE`: what a start would make of a config file, without starting.
//
// It parses the file exactly as a start does (same messages), checks what a start checks before
// it listens without side effects that matter: the plugin order, each enabled plugin's library
// and ABI version (the library is loaded, its init is not called), the spool directory and the
// TLS certificate and key. On success it prints the effective config (every key with the value
// in force, secrets redacted) on `out` and returns 0; otherwise it prints the first problem on
// `err` and returns 2 for an invalid config, 1 for a config whose parts cannot be used.
#pragma once

#include <filesystem>
#include <ostream>

namespace aqd {

int check_config(const std::filesystem::path& file, std::ostream& out, std::ostream& err);

}  // namespace aqd
