// Content-Disposition for downloads, with the stored filename encoded safely (RFC 6266):
//   attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded
// The fallback replaces every byte that is not printable ASCII, and '"', '\\' and '%', by '_'
// (a UTF-8 character becomes one '_'), so no header injection or quoting trouble is possible
// whatever the name; clients that know RFC 5987 use the exact UTF-8 name.
#pragma once

#include <string>
#include <string_view>

namespace aq::files {

std::string content_disposition(std::string_view filename);

}  // namespace aq::files
