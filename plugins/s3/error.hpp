// What went wrong with an S3 request, and whether trying again can help.
//
// Every failure of the client is an aq::s3::error: an answer from the server (its status and the
// Code/Message of the S3 XML error document) or no usable answer at all (connection refused or
// reset, timeout, TLS failure, an unreadable response). retryable() is the client's retry rule,
// exposed so a caller that drives its own loop (a background job) applies the same one:
//   - throttled (503 SlowDown, 429), server (5xx but 501, and an InternalError even inside a 200) and
//     network failures are retryable; so is 400 RequestTimeout (the server gave up waiting for a
//     slow body);
//   - everything else (not found, denied, a rejected request, a failed precondition, a TLS
//     certificate that does not verify, a malformed answer) is not: repeating it gives the same.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace aq::s3 {

enum class error_kind {
    not_found,     // 404: NoSuchKey, NoSuchBucket, NoSuchUpload
    denied,        // 401/403: SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied
    rejected,      // other 4xx, and 501: InvalidRange, EntityTooSmall, InvalidPart, BadDigest, NotImplemented
    precondition,  // 412: the object changed (a resumed download's If-Match)
    throttled,     // 503 SlowDown, 429
    server,        // other 5xx, InternalError
    network,       // no answer: connect, read, write, timeout, TLS
    protocol,      // an answer that is not HTTP, or a body that is not the expected XML
};

std::string_view to_string(error_kind kind) noexcept;

class error : public std::runtime_error {
public:
    // `what` is the full sentence; the other fields are for callers that branch on them.
    error(error_kind kind, int status, std::string code, std::string message, std::string request_id,
          bool retryable, const std::string& what);

    error_kind kind() const noexcept { return kind_; }
    int status() const noexcept { return status_; }                 // 0 when no HTTP answer arrived
    const std::string& code() const noexcept { return code_; }       // "NoSuchKey"; "" when none
    const std::string& message() const noexcept { return message_; } // the server's Message
    const std::string& request_id() const noexcept { return request_id_; }
    bool retryable() const noexcept { return retryable_; }
    bool not_found() const noexcept { return kind_ == error_kind::not_found; }

private:
    error_kind kind_;
    int status_;
    std::string code_, message_, request_id_;
    bool retryable_;
};

// The error for an HTTP answer that is not a success. `body` is the (possibly truncated) response
// body: an S3 <Error> document when the server sent one; HEAD answers have none, and the code is
// then derived from the status ("NotFound", "Forbidden", ...). `operation` names the request in
// what() ("GET object \"a/b\"").
error error_from_response(std::string_view operation, int status, std::string_view body,
                          std::string_view request_id);

// A failure without an HTTP answer.
error network_error(std::string_view operation, std::string_view detail, bool retryable);
error protocol_error(std::string_view operation, std::string_view detail);

}  // namespace aq::s3
