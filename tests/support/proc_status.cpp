#include "proc_status.hpp"

#include <fstream>
#include <stdexcept>
#include <string>

namespace aqt {

long long proc_status_kib(pid_t pid, std::string_view field) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    std::ifstream in(path);
    const std::string prefix = std::string(field) + ":";
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(prefix)) return std::stoll(line.substr(prefix.size()));
    throw std::runtime_error("no " + std::string(field) + " in " + path);
}

}  // namespace aqt
