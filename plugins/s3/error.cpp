#include "error.hpp"

#include "xml.hpp"

namespace aq::s3 {

std::string_view to_string(error_kind kind) noexcept {
    switch (kind) {
        case error_kind::not_found: return "not_found";
        case error_kind::denied: return "denied";
        case error_kind::rejected: return "rejected";
        case error_kind::precondition: return "precondition";
        case error_kind::throttled: return "throttled";
        case error_kind::server: return "server";
        case error_kind::network: return "network";
        case error_kind::protocol: return "protocol";
    }
    return "unknown";
}

error::error(error_kind kind, int status, std::string code, std::string message, std::string request_id,
             bool retryable, const std::string& what)
    : std::runtime_error(what),
      kind_(kind),
      status_(status),
      code_(std::move(code)),
      message_(std::move(message)),
      request_id_(std::move(request_id)),
      retryable_(retryable) {}

namespace {

// HEAD answers carry no body: the code S3 SDKs report for them.
std::string code_for_status(int status) {
    switch (status) {
        case 400: return "BadRequest";
        case 403: return "Forbidden";
        case 404: return "NotFound";
        case 412: return "PreconditionFailed";
        case 416: return "InvalidRange";
        case 500: return "InternalError";
        case 503: return "ServiceUnavailable";
        default: return "HTTP" + std::to_string(status);
    }
}

}  // namespace

error error_from_response(std::string_view operation, int status, std::string_view body,
                          std::string_view request_id) {
    std::string code, message, rid(request_id);
    if (!body.empty()) {
        try {
            xml_element doc = parse_xml(body);
            if (doc.name == "Error") {
                code = doc.child_text("Code");
                message = doc.child_text("Message");
                if (std::string r = doc.child_text("RequestId"); !r.empty()) rid = r;
            }
        } catch (const std::exception&) {
            // Not XML (a proxy's HTML page, a truncated body): the status alone speaks.
        }
    }
    if (code.empty()) code = code_for_status(status);

    error_kind kind;
    // 503 is S3's "reduce your request rate" (SlowDown, ServiceUnavailable); 429 a proxy's.
    if (code == "SlowDown" || status == 429 || status == 503) kind = error_kind::throttled;
    // 501 NotImplemented: the server lacks what the request asks for (a header, a feature);
    // asking again gives the same.
    else if (status == 501) kind = error_kind::rejected;
    else if (status >= 500 || code == "InternalError") kind = error_kind::server;
    else if (status == 404) kind = error_kind::not_found;
    else if (status == 401 || status == 403) kind = error_kind::denied;
    else if (status == 412) kind = error_kind::precondition;
    else kind = error_kind::rejected;
    bool retryable = kind == error_kind::throttled || kind == error_kind::server || code == "RequestTimeout";

    std::string what = "S3 " + std::string(operation) + ": " + std::to_string(status) + " " + code;
    if (!message.empty()) what += ": " + message;
    if (!rid.empty()) what += " (request id " + rid + ")";
    return error(kind, status, std::move(code), std::move(message), std::move(rid), retryable, what);
}

error network_error(std::string_view operation, std::string_view detail, bool retryable) {
    return error(error_kind::network, 0, {}, std::string(detail), {}, retryable,
                 "S3 " + std::string(operation) + ": " + std::string(detail));
}

error protocol_error(std::string_view operation, std::string_view detail) {
    return error(error_kind::protocol, 0, {}, std::string(detail), {}, false,
                 "S3 " + std::string(operation) + ": " + std::string(detail));
}

}  // namespace aq::s3
