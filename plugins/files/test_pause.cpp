#include "test_pause.hpp"

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

namespace aq::files {
namespace {

struct pauses {
    std::map<std::string, int, std::less<>> points;  // point -> milliseconds
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
        const char* spec = std::getenv("AQ_FILES_TEST_PAUSE");
        std::string_view rest = spec ? spec : "";
        while (!rest.empty()) {
            auto comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            auto colon = item.rfind(':');
            if (colon == std::string_view::npos) continue;
            p.points[std::string(item.substr(0, colon))] = std::atoi(std::string(item.substr(colon + 1)).c_str());
        }
        if (!p.points.empty() && p.log) p.log("files: AQ_FILES_TEST_PAUSE is set (a test-only setting)");
    });
}

void pause_point(std::string_view point) {
    const pauses& p = state();
    if (p.points.empty()) return;
    auto it = p.points.find(point);
    if (it == p.points.end()) return;
    if (p.log) p.log("files: test pause at " + std::string(point));
    std::this_thread::sleep_for(std::chrono::milliseconds(it->second));
}

}  // namespace aq::files
