// Validates a batch input file (JSONL) as it streams in, naming the first bad line.
//
// Each non-empty line must be a JSON object with a non-empty string custom_id unique in the
// file, "method": "POST", a "url" the batches plugin serves and an object "body"; the file must
// be UTF-8 and hold at least one request. Lines are parsed with Boost.JSON's incremental SAX
// parser, so no line is ever held in memory: what grows is the set of custom_ids (one string
// per line, which is the price of the uniqueness check).
//
// Errors throw batch_validator::error with the message API.md prescribes ("Invalid JSON at
// line 3", "Duplicate custom_id at line 7").
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aq::files {

class batch_validator {
public:
    struct error : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    batch_validator();
    ~batch_validator();
    batch_validator(const batch_validator&) = delete;
    batch_validator& operator=(const batch_validator&) = delete;

    // Feeds the next bytes (split anywhere). Throws batch_validator::error.
    void push(std::string_view chunk);
    // Declares the end of the file; validates the last line and that there was a request.
    void finish();

    std::uint64_t requests() const noexcept;

    // The URLs a batch line may target.
    static bool supported_url(std::string_view url) noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace aq::files
