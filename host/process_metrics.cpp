#include "process_metrics.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <unistd.h>

namespace aqd {

void add_process_metrics(metrics::registry& registry) {
    using metrics::kind;
    const double started =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    registry.add_sampled(kind::gauge, "process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
                         [started] { return started; });
    registry.add_sampled(kind::counter, "process_cpu_seconds_total", "User and system CPU time spent, in seconds.", [] {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        const auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
        return seconds(u.ru_utime) + seconds(u.ru_stime);
    });
    registry.add_sampled(kind::gauge, "process_resident_memory_bytes", "Resident memory size, in bytes.", [] {
        std::ifstream statm("/proc/self/statm");
        double size = 0, resident = 0;
        statm >> size >> resident;
        return resident * double(sysconf(_SC_PAGESIZE));
    });
    registry.add_sampled(kind::gauge, "process_open_fds", "Open file descriptors.", [] {
        std::error_code ec;
        double n = 0;
        for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec))
            ++n;
        return n;
    });
    registry.add_sampled(kind::gauge, "process_max_fds", "The soft limit on open file descriptors.", [] {
        rlimit rl{};
        getrlimit(RLIMIT_NOFILE, &rl);
        return double(rl.rlim_cur);
    });
}

}  // namespace aqd
