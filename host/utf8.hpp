// UTF-8 validity (RFC 3629), for text that ends up in JSON or the Prometheus exposition format:
// expanded config values and metric label values.
#pragma once

#include <cstddef>
#include <string_view>

namespace aqd {

// No overlong form, no surrogate, nothing above U+10FFFF.
inline bool valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
        const unsigned char c = byte(i);
        const std::size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        // The second byte's range depends on the first; the others are plain continuation bytes.
        const unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        if (n > 1 && (byte(i + 1) < lo || byte(i + 1) > hi)) return false;
        for (std::size_t k = 2; k < n; ++k)
            if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return false;
        i += n;
    }
    return true;
}

}  // namespace aqd
