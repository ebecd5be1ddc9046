// Builds multipart/form-data bodies the way the OpenAI SDKs and curl send uploads.
//
//   aqt::multipart form;
//   form.field("purpose", "batch").file("file", "input.jsonl", lines);
//   c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
#pragma once

#include <string>
#include <string_view>

namespace aqt {

class multipart {
public:
    // A random boundary unless one is given.
    explicit multipart(std::string boundary = {});

    multipart& field(std::string_view name, std::string_view value);
    multipart& file(std::string_view name, std::string_view filename, std::string_view content,
                    std::string_view content_type = "application/octet-stream");

    const std::string& boundary() const noexcept { return boundary_; }
    // "multipart/form-data; boundary=..."
    std::string content_type() const;
    // The parts so far plus the closing delimiter.
    std::string body() const;

private:
    std::string boundary_;
    std::string parts_;
};

}  // namespace aqt
