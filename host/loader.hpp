// Loads plugin shared libraries (Boost.DLL) and checks their ABI before anything else runs.
//
// Like PostgreSQL's magic block, the descriptor is compared before init is called and the first
// field that differs is named. Libraries are never unloaded: code of a plugin may still be on a
// stack (a detached thread, an atexit handler) until the process ends.
#pragma once

#include "aqueduct/abi.h"

#include <filesystem>
#include <stdexcept>
#include <string>

namespace aqd {

struct load_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct loaded_plugin {
    std::string name;
    std::filesystem::path path;
    const aq_plugin* descriptor = nullptr;
};

// The library file for a plugin name: <dir>/lib<name>.so.
std::filesystem::path plugin_path(const std::filesystem::path& dir, const std::string& name);

// Loads and validates. Throws load_error with messages such as
// "plugin files (/x/libfiles.so): abi_major is 2, host supports 1".
loaded_plugin load_plugin(const std::filesystem::path& dir, const std::string& name);

}  // namespace aqd
