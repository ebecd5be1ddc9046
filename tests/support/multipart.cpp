#include "multipart.hpp"

#include "digest.hpp"

namespace aqt {

multipart::multipart(std::string boundary)
    : boundary_(boundary.empty() ? "----aqt-boundary-" + random_hex(12) : std::move(boundary)) {}

multipart& multipart::field(std::string_view name, std::string_view value) {
    parts_ += "--" + boundary_ + "\r\n";
    parts_ += "Content-Disposition: form-data; name=\"" + std::string(name) + "\"\r\n\r\n";
    parts_ += value;
    parts_ += "\r\n";
    return *this;
}

multipart& multipart::file(std::string_view name, std::string_view filename, std::string_view content,
                           std::string_view content_type) {
    parts_ += "--" + boundary_ + "\r\n";
    parts_ += "Content-Disposition: form-data; name=\"" + std::string(name) + "\"; filename=\"" +
              std::string(filename) + "\"\r\n";
    parts_ += "Content-Type: " + std::string(content_type) + "\r\n\r\n";
    parts_ += content;
    parts_ += "\r\n";
    return *this;
}

std::string multipart::content_type() const { return "multipart/form-data; boundary=" + boundary_; }

std::string multipart::body() const { return parts_ + "--" + boundary_ + "--\r\n"; }

}  // namespace aqt
