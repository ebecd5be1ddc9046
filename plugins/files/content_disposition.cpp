#include "content_disposition.hpp"

namespace aq::files {

std::string content_disposition(std::string_view filename) {
    std::string fallback, encoded;
    static constexpr char hex[] = "0123456789ABCDEF";
    for (std::size_t i = 0; i < filename.size(); ++i) {
        auto c = static_cast<unsigned char>(filename[i]);
        // RFC 5987 attr-char
        bool attr = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$&+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
        if (attr) {
            encoded.push_back(static_cast<char>(c));
        } else {
            encoded.push_back('%');
            encoded.push_back(hex[c >> 4]);
            encoded.push_back(hex[c & 15]);
        }
        if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation: its lead byte gave the '_'
        bool plain = c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != '%';
        fallback.push_back(plain ? static_cast<char>(c) : '_');
    }
    if (fallback.empty()) fallback = "file";
    return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace aq::files
