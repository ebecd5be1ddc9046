#include "http_date.hpp"

namespace aqd {

void format_http_date(std::time_t t, char (&out)[29]) {
    // Written by hand rather than with strftime: %a and %b follow the locale, and the header
    // must be English whatever the process's locale is.
    static constexpr char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&t, &tm);
    auto two = [](char* p, int v) {
        p[0] = static_cast<char>('0' + v / 10 % 10);
        p[1] = static_cast<char>('0' + v % 10);
    };
    char* p = out;
    for (int i = 0; i < 3; ++i) *p++ = days[tm.tm_wday][i];
    *p++ = ',';
    *p++ = ' ';
    two(p, tm.tm_mday);
    p += 2;
    *p++ = ' ';
    for (int i = 0; i < 3; ++i) *p++ = months[tm.tm_mon][i];
    *p++ = ' ';
    const int year = tm.tm_year + 1900;
    two(p, year / 100);
    two(p + 2, year % 100);
    p += 4;
    *p++ = ' ';
    two(p, tm.tm_hour);
    p += 2;
    *p++ = ':';
    two(p, tm.tm_min);
    p += 2;
    *p++ = ':';
    two(p, tm.tm_sec);
    p += 2;
    *p++ = ' ';
    *p++ = 'G';
    *p++ = 'M';
    *p++ = 'T';
}

std::string_view http_date_now() {
    thread_local std::time_t cached_second = -1;
    thread_local char text[29];
    const std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        format_http_date(now, text);
        cached_second = now;
    }
    return std::string_view(text, sizeof text);
}

}  // namespace aqd
