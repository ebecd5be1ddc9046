#include "test_pause.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace aq::files {
namespace {

struct point_spec {
    int milliseconds = 0;
    unsigned from_arrival = 1;
    std::unique_ptr<std::atomic<unsigned>> arrivals = std::make_unique<std::atomic<unsigned>>(0);
};

struct pauses {
    std::map<std::string, point_spec, std::less<>> points;
    std::function<void(const std::string&)> log;
};

pauses& state() {
    static pauses p;
    return p;
}
std::once_flag configured;

}  // namespace

void configure_test_pauses(std::function<void(const std::string&)> log) {
    std::call_once(configured, [&] {
        pauses& p = state();
        p.log = std::move(log);
        const char* setting = std::getenv("AQ_FILES_TEST_PAUSE");
        std::string_view rest = setting ? setting : "";
        while (!rest.empty()) {
            auto comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            auto colon = item.rfind(':');
            if (colon == std::string_view::npos) continue;
            std::string timing(item.substr(colon + 1));
            point_spec& spec = p.points[std::string(item.substr(0, colon))];
            spec.milliseconds = std::atoi(timing.c_str());
            if (auto at = timing.find('@'); at != std::string::npos)
                spec.from_arrival = static_cast<unsigned>(std::max(1, std::atoi(timing.c_str() + at + 1)));
        }
        if (!p.points.empty() && p.log) p.log("files: AQ_FILES_TEST_PAUSE is set (a test-only setting)");
    });
}

void pause_point(std::string_view point) {
    const pauses& p = state();
    if (p.points.empty()) return;
    auto it = p.points.find(point);
    if (it == p.points.end()) return;
    if (++*it->second.arrivals < it->second.from_arrival) return;
    if (p.log) p.log("files: test pause at " + std::string(point));
    std::this_thread::sleep_for(std::chrono::milliseconds(it->second.milliseconds));
}

}  // namespace aq::files
