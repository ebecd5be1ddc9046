#include "process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace aqt {

long long status_kib(pid_t pid, std::string_view field) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("no /proc entry for pid " + std::to_string(pid));
    const std::string prefix = std::string(field) + ":";
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(prefix)) return std::stoll(line.substr(prefix.size()));
    throw std::runtime_error("no " + std::string(field) + " in " + path);
}

std::uint64_t resident_bytes(pid_t pid) { return static_cast<std::uint64_t>(status_kib(pid, "VmRSS")) * 1024; }

double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    auto close = stat.rfind(')');
    if (close == std::string::npos) throw std::runtime_error("no /proc/PID/stat for pid " + std::to_string(pid));
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::vector<std::string> open_files(pid_t pid) {
    std::vector<std::string> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char target[PATH_MAX];
        ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target);
        if (n > 0) out.emplace_back(target, static_cast<std::size_t>(n));
    }
    ::closedir(d);
    return out;
}

std::uint64_t raise_open_file_limit(std::uint64_t wanted) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= wanted) return rl.rlim_cur;
    if (rl.rlim_max < wanted) {
        rlimit raised{wanted, wanted};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return wanted;
    }
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, wanted);
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

}  // namespace aqt
