#include "prometheus_text.hpp"

#include "gateway.hpp"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace aqt::prometheus {

samples parse(std::string_view text) {
    samples out;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty() || line.front() == '#') continue;
        // The value follows the last space (label values may hold spaces, but not unescaped at
        // the end of the line).
        const auto space = line.rfind(' ');
        if (space == std::string_view::npos) throw std::runtime_error("sample without a value: " + std::string(line));
        const std::string value(line.substr(space + 1));
        double v;
        if (value == "+Inf") v = HUGE_VAL;
        else if (value == "-Inf") v = -HUGE_VAL;
        else v = std::strtod(value.c_str(), nullptr);
        out[std::string(line.substr(0, space))] = v;
    }
    return out;
}

double value(const samples& s, std::string_view series) {
    const auto it = s.find(series);
    return it == s.end() ? 0.0 : it->second;
}

double delta(const samples& before, const samples& after, std::string_view series) {
    return value(after, series) - value(before, series);
}

std::string promtool_problems(std::string_view text) {
    const command_result r = run_program("promtool", {"check", "metrics"}, text);
    if (r.status.success()) return {};
    if (!r.status.exited || r.status.code == 127)
        throw std::runtime_error("promtool could not be run (etc/bootstrap.sh installs the prometheus package): " +
                                 r.output);
    return r.output.empty() ? "promtool failed with " + r.status.describe() : r.output;
}

}  // namespace aqt::prometheus
