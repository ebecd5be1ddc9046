// The rules for one line of a batch input file, and the streaming parser that reads what they
// need. The validator (validator.hpp) frames lines and applies the file-level rules; this is what
// one line must be:
//
//   {"custom_id": "<1..512 bytes>", "method": "POST", "url": "<supported>",
//    "body": {"model": "<1..256 bytes>", ...}}
//
// Checked in this order; the first broken rule is the line's problem (code, message, param):
//   not a JSON object                   invalid_json_line  "Invalid request (not a JSON object)"
//   custom_id, method, url, body or     invalid_request    "Invalid request (duplicate key 'url')"
//     body.model given twice
//   custom_id missing / not a non-empty invalid_request    "Missing custom_id" / "Invalid custom_id
//     string / over 512 bytes                                (must be a non-empty string)" / "...
//                                                            (longer than 512 bytes)"
//   method missing / not "POST"         invalid_request    "Missing method" / "Invalid method (must be POST)"
//   url missing / not a supported one   invalid_request    "Missing url" / "Unsupported url"
//   url not the batch's endpoint        url_mismatch       (only when an endpoint is given: batch creation)
//   body missing / not an object        invalid_request    "Missing body" / "Invalid body (must be a JSON object)"
//   body.model missing / not a          invalid_request    "Missing body.model" / "Invalid body.model
//     non-empty string / over 256 bytes                      (must be a non-empty string)" / "...(longer than 256 bytes)"
//   model not served                    model_not_found    (only with a model hook: batch creation)
//
// Nothing is built: the parser is Boost.JSON's basic_parser with a handler that keeps only the
// few top-level strings above, each capped, so a line of any size costs constant memory. UTF-8
// is checked by the validator, not here (see validator.hpp for the order of line-level checks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace aq::batch_line {

// What a file may hold. Defaults: 16 MiB lines (room for a request carrying base64 images),
// 512-byte custom_ids, 50,000 requests (OpenAI's own limit).
struct limits {
    std::size_t max_line_bytes = 16u << 20;
    std::size_t max_custom_id_bytes = 512;
    std::size_t max_model_bytes = 256;
    std::uint64_t max_requests = 50000;
};

// A broken rule: which line (1-based; 0 for the whole file), a stable code, a message without the
// line number, and the offending field (empty when none).
struct problem {
    std::uint64_t line = 0;
    std::string code;
    std::string message;
    std::string param;

    friend bool operator==(const problem&, const problem&) = default;
};

// What batch creation adds to the rules: the batch's endpoint (a line's url must equal it) and
// which models an upstream serves. Both unset at upload, where neither is known.
struct context {
    std::optional<std::string> endpoint;
    std::function<bool(std::string_view model)> model_known;
};

// The endpoints a batch may target (API.md): /v1/chat/completions, /v1/completions,
// /v1/embeddings, /v1/responses.
bool supported_url(std::string_view url) noexcept;

// One line's JSON, fed in pieces; reusable line after line.
class line_parser {
public:
    explicit line_parser(const limits& lim);
    ~line_parser();
    line_parser(const line_parser&) = delete;
    line_parser& operator=(const line_parser&) = delete;

    // Starts a new line.
    void reset();
    // Feeds the line's next bytes (no '\n'). False once the bytes are not JSON.
    bool write(std::string_view bytes);
    // The line ended. True when it held exactly one JSON value (and whitespace).
    bool finish();

    // The first rule the (finished, valid JSON) line breaks, with line = 0.
    std::optional<problem> judge(const context& ctx) const;

    // The fields of a line that passed judge(); views valid until the next reset().
    std::string_view custom_id() const noexcept;
    std::string_view url() const noexcept;
    std::string_view model() const noexcept;
    // The position of "body" among the top-level members (for member_value).
    std::size_t body_member() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The raw text of the value of the `index`-th member (0-based) of the JSON object `text`, which
// must be valid JSON (a line that passed judge()).
std::string_view member_value(std::string_view text, std::size_t index) noexcept;

}  // namespace aq::batch_line
