#include "retry_after.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>

namespace batches {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// A finite, non-negative decimal number, the whole of `s`.
std::optional<double> number(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0) return std::nullopt;
    return v;
}

// v * scale milliseconds, at most max_ms; the comparison happens in double, so nothing out of
// range is ever converted to an integer.
long long capped_ms(double v, double scale, long long max_ms) {
    double ms = v * scale;
    if (!(ms < static_cast<double>(max_ms))) return max_ms;
    return static_cast<long long>(ms);
}

// A cursor over the date text; every step fails (returns false) on a mismatch.
struct cursor {
    std::string_view s;

    bool literal(std::string_view lit) {
        if (!s.starts_with(lit)) return false;
        s.remove_prefix(lit.size());
        return true;
    }
    // Exactly n digits.
    bool digits(std::size_t n, int& out) {
        if (s.size() < n) return false;
        out = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        s.remove_prefix(n);
        return true;
    }
    // One of `names`; its index into out.
    template <std::size_t N>
    bool one_of(const std::array<std::string_view, N>& names, int& out) {
        for (std::size_t i = 0; i < N; ++i)
            if (literal(names[i])) {
                out = static_cast<int>(i);
                return true;
            }
        return false;
    }
    // time-of-day = hour ":" minute ":" second
    bool time_of_day(int& h, int& m, int& sec) {
        return digits(2, h) && literal(":") && digits(2, m) && literal(":") && digits(2, sec) && h <= 23 && m <= 59 &&
               sec <= 60;  // 60: a leap second
    }
};

constexpr std::array<std::string_view, 7> day_names = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
// Longest first is not needed: no long day name is a prefix of another.
constexpr std::array<std::string_view, 7> long_day_names = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                                            "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::optional<long long> unix_seconds(int year, int month0, int day, int h, int m, int s) {
    using namespace std::chrono;
    year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month0 + 1)),
                       std::chrono::day(static_cast<unsigned>(day))};
    if (!ymd.ok()) return std::nullopt;
    long long days = sys_days(ymd).time_since_epoch().count();
    return days * 86400 + h * 3600 + m * 60 + s;
}

}  // namespace

std::optional<long long> parse_http_date(std::string_view text, long long now_s) {
    int wd = 0, day = 0, month = 0, year = 0, h = 0, m = 0, s = 0;
    {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        cursor c{text};
        if (c.one_of(day_names, wd) && c.literal(", ") && c.digits(2, day) && c.literal(" ") &&
            c.one_of(month_names, month) && c.literal(" ") && c.digits(4, year) && c.literal(" ") &&
            c.time_of_day(h, m, s) && c.literal(" GMT") && c.s.empty())
            return unix_seconds(year, month, day, h, m, s);
    }
    {
        // rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
        cursor c{text};
        int yy = 0;
        if (c.one_of(long_day_names, wd) && c.literal(", ") && c.digits(2, day) && c.literal("-") &&
            c.one_of(month_names, month) && c.literal("-") && c.digits(2, yy) && c.literal(" ") &&
            c.time_of_day(h, m, s) && c.literal(" GMT") && c.s.empty()) {
            using namespace std::chrono;
            int this_year = static_cast<int>(
                year_month_day(floor<days>(sys_seconds(seconds(now_s)))).year());
            year = this_year / 100 * 100 + yy;
            if (year > this_year + 50) year -= 100;
            return unix_seconds(year, month, day, h, m, s);
        }
    }
    {
        // asctime-date: Sun Nov  6 08:49:37 1994 (the day is two digits or a space and one)
        cursor c{text};
        if (c.one_of(day_names, wd) && c.literal(" ") && c.one_of(month_names, month) && c.literal(" ") &&
            ((c.literal(" ") && c.digits(1, day)) || c.digits(2, day)) && c.literal(" ") && c.time_of_day(h, m, s) &&
            c.literal(" ") && c.digits(4, year) && c.s.empty())
            return unix_seconds(year, month, day, h, m, s);
    }
    return std::nullopt;
}

std::optional<long long> retry_after_delay_ms(const std::optional<std::string>& retry_after_ms,
                                              const std::optional<std::string>& retry_after, long long now_s,
                                              long long max_ms) {
    if (retry_after_ms)
        if (auto v = number(*retry_after_ms)) return capped_ms(*v, 1, max_ms);
    if (!retry_after) return std::nullopt;
    if (auto v = number(*retry_after)) return capped_ms(*v, 1000, max_ms);
    if (auto date = parse_http_date(trim(*retry_after), now_s)) {
        // Both are bounded (a 4-digit year), so the difference cannot overflow.
        long long delta = *date - now_s;
        return delta <= 0 ? 0 : capped_ms(static_cast<double>(delta), 1000, max_ms);
    }
    return std::nullopt;
}

}  // namespace batches
