#include "response_head.hpp"

#include "http_date.hpp"
#include "request_id.hpp"

namespace aqd {

std::string_view reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return {};
    }
}

std::string response_head::serialize() const {
    std::string out;
    std::size_t size = 160 + request_id.size();
    if (headers)
        for (auto& [name, value] : *headers) size += name.size() + value.size() + 4;
    out.reserve(size);

    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\n";
    if (headers) {
        for (auto& [name, value] : *headers) {
            out += name;
            out += ": ";
            out += value;
            out += "\r\n";
        }
    }
    out += "Date: ";
    out += http_date_now();
    out += "\r\nServer: aqueduct\r\n";
    if (!request_id.empty()) {
        out += "x-request-id: ";
        out += request_id;
        out += "\r\n";
    }
    switch (framing) {
    case response_framing::none:
    case response_framing::until_close:
        break;
    case response_framing::length:
        out += "Content-Length: ";
        out += std::to_string(length);
        out += "\r\n";
        break;
    case response_framing::chunked:
        out += "Transfer-Encoding: chunked\r\n";
        break;
    }
    if (!keep_alive || framing == response_framing::until_close)
        out += "Connection: close\r\n";
    else if (http10)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
    return out;
}

std::string closing_answer(int status, const header_list& headers, std::string_view body) {
    response_head head;
    head.status = status;
    head.headers = &headers;
    head.length = body.size();
    head.keep_alive = false;
    const std::string id = make_request_id();
    head.request_id = id;
    std::string out = head.serialize();
    out += body;
    return out;
}

}  // namespace aqd
