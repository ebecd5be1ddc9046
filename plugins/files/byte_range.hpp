// The one HTTP Range form downloads honour: a single "bytes=" range (RFC 9110 §14).
//
//   bytes=a-b   bytes a..b inclusive (b clipped to the end)
//   bytes=a-    from a to the end
//   bytes=-n    the last n bytes
//
// Several ranges, another unit or a malformed header are ignored (the whole content is sent,
// as the RFC allows); a well-formed range that starts past the end is unsatisfiable (416).
#pragma once

#include <cstdint>
#include <string_view>

namespace aq::files {

struct byte_range {
    enum class kind { whole, partial, unsatisfiable };
    kind result = kind::whole;
    std::uint64_t first = 0;  // inclusive
    std::uint64_t last = 0;   // inclusive; valid when result == partial

    static byte_range parse(std::string_view header, std::uint64_t size);
};

}  // namespace aq::files
