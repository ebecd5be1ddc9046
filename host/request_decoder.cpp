#include "request_decoder.hpp"

#include "ascii.hpp"

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

namespace aqd {

namespace http = boost::beast::http;

struct request_decoder::beast_parser {
    http::request_parser<http::buffer_body> p;
};

namespace {

bool tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 §5.6.1:
// empty elements are ignored).
template <class Fn>
void for_each_element(std::string_view list, Fn fn) {
    while (true) {
        auto comma = list.find(',');
        std::string_view item = trim_ows(list.substr(0, comma));
        if (!item.empty()) fn(item);
        if (comma == std::string_view::npos) return;
        list.remove_prefix(comma + 1);
    }
}

constexpr std::string_view malformed = "Malformed HTTP request: ";

}  // namespace

const std::string* request_line_and_fields::field(std::string_view name) const {
    for (auto& [k, v] : fields)
        if (iequals(k, name)) return &v;
    return nullptr;
}

request_decoder::request_decoder(std::size_t max_header_bytes) : max_header_bytes_(max_header_bytes) {}

request_decoder::~request_decoder() = default;

void request_decoder::fail(int status, std::string message) {
    state_ = state::failed;
    error_ = framing_error{status, std::move(message)};
    std::string().swap(head_);
    std::string().swap(carry_);
    parser_.reset();
}

std::size_t request_decoder::feed(std::string_view bytes, std::string& body) {
    switch (state_) {
    case state::head: return feed_head(bytes);
    case state::body: return feed_body(bytes, body);
    case state::complete:
    case state::failed: return 0;
    }
    return 0;
}

// ---- head --------------------------------------------------------------------------------------

// Checks the head bytes from `from` on (with the byte before for context). Beast is exact about
// most of the grammar but accepts obs-fold (it unfolds it) and only finds a bare LF once a
// CRLFCRLF arrives; this catches both on the byte they appear.
bool request_decoder::check_head_bytes(std::size_t from) {
    for (std::size_t i = from; i < head_.size(); ++i) {
        const char c = head_[i];
        const char prev = i ? head_[i - 1] : '\0';
        if (prev == '\r' && c != '\n') {
            fail(400, std::string(malformed) + "a CR not followed by LF in the request head.");
            return false;
        }
        if (c == '\n' && prev != '\r') {
            fail(400, std::string(malformed) + "a bare LF in the request head (lines end with CRLF).");
            return false;
        }
        if ((c == ' ' || c == '\t') && i >= 2 && prev == '\n') {
            fail(400, std::string(malformed) + "obs-fold (a header line starting with whitespace) is not accepted.");
            return false;
        }
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u == 0x7f) {
            fail(400, std::string(malformed) + "a control character in the request head.");
            return false;
        }
    }
    return true;
}

std::size_t request_decoder::feed_head(std::string_view bytes) {
    const std::size_t old = head_.size();
    const std::size_t take = std::min(bytes.size(), max_header_bytes_ - old);
    head_.append(bytes.substr(0, take));
    const std::size_t end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end != std::string::npos) head_.resize(end + 4);
    if (!check_head_bytes(old)) return take;
    if (end == std::string::npos) {
        if (head_.size() >= max_header_bytes_) fail(431, "Request header fields are too large.");
        return take;
    }
    const std::size_t used = end + 4 - old;
    parse_head();
    return used;
}

void request_decoder::parse_head() {
    parser_ = std::make_unique<beast_parser>();
    auto& p = parser_->p;
    p.header_limit(static_cast<std::uint32_t>(head_.size() + 1));
    p.body_limit(boost::none);  // route limits are the connection's, with a proper answer
    p.eager(true);
    boost::beast::error_code ec;
    const std::size_t n = p.put(boost::asio::buffer(head_), ec);
    if (ec == http::error::need_more && p.is_header_done()) ec = {};
    if (ec == http::error::bad_transfer_encoding)
        return fail(400, std::string(malformed) + "Transfer-Encoding may not be repeated or combined with Content-Length.");
    if (ec == http::error::multiple_content_length)
        return fail(400, std::string(malformed) + "conflicting Content-Length values.");
    if (ec == http::error::bad_content_length)
        return fail(400, std::string(malformed) + "invalid Content-Length (or Content-Length with Transfer-Encoding).");
    if (ec) return fail(400, std::string(malformed) + ec.message() + ".");
    if (!p.is_header_done() || n != head_.size()) return fail(400, std::string(malformed) + "incomplete request head.");

    const auto& req = p.get();
    parsed_.method.assign(req.method_string().data(), req.method_string().size());
    parsed_.target.assign(req.target().data(), req.target().size());
    const unsigned version = req.version();
    if (version / 10 != 1)
        return fail(505, "HTTP version " + std::to_string(version / 10) + "." + std::to_string(version % 10) +
                             " is not supported; use HTTP/1.1.");
    parsed_.version = version == 10 ? 10 : 11;
    parsed_.keep_alive = req.keep_alive();
    parsed_.fields.reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
    for (auto& f : req) parsed_.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
    std::string().swap(head_);

    std::size_t hosts = 0;
    std::vector<std::string_view> te, cl;
    for (auto& [name, value] : parsed_.fields) {
        if (iequals(name, "host")) ++hosts;
        else if (iequals(name, "transfer-encoding")) te.push_back(value);
        else if (iequals(name, "content-length")) cl.push_back(value);
        else if (iequals(name, "expect")) parsed_.expect_continue = iequals(trim_ows(value), "100-continue");
    }
    if (parsed_.version == 11 && hosts != 1)
        return fail(400, std::string(malformed) + "an HTTP/1.1 request needs exactly one Host header.");

    if (!te.empty()) {
        if (parsed_.version == 10)
            return fail(400, std::string(malformed) + "Transfer-Encoding is not allowed in an HTTP/1.0 request.");
        if (!cl.empty())
            return fail(400, std::string(malformed) + "a request may not carry both Content-Length and Transfer-Encoding.");
        std::vector<std::string_view> codings;
        bool bad_token = false;
        for (auto value : te)
            for_each_element(value, [&](std::string_view item) {
                for (char c : item) bad_token = bad_token || !tchar(c);
                codings.push_back(item);
            });
        if (codings.empty() || bad_token)
            return fail(400, std::string(malformed) + "invalid Transfer-Encoding.");
        std::size_t chunked = 0;
        for (auto c : codings) chunked += iequals(c, "chunked");
        if (!iequals(codings.back(), "chunked"))
            return fail(400, std::string(malformed) + "Transfer-Encoding must end with chunked.");
        if (chunked > 1) return fail(400, std::string(malformed) + "chunked may be applied only once.");
        if (codings.size() > 1)
            return fail(501, "Transfer-Encoding " + std::string(codings.front()) +
                                 " is not supported; send the body with chunked alone or with Content-Length.");
        parsed_.framing = body_framing::chunked;
        state_ = state::body;
        return;
    }

    if (!cl.empty()) {
        bool first = true, bad = false;
        std::uint64_t length = 0;
        for (auto value : cl) {
            bool any = false;
            for_each_element(value, [&](std::string_view item) {
                any = true;
                std::uint64_t v = 0;
                if (item.size() > 18) bad = true;  // 10^18 bytes: far past any limit, and no overflow
                for (char c : item) {
                    if (c < '0' || c > '9') bad = true;
                    v = v * 10 + static_cast<std::uint64_t>(c - '0');
                }
                if (!first && v != length) bad = true;
                length = v;
                first = false;
            });
            if (!any) bad = true;
        }
        if (bad) return fail(400, std::string(malformed) + "invalid or conflicting Content-Length.");
        parsed_.content_length = length;
        if (length > 0) {
            parsed_.framing = body_framing::length;
            parser_.reset();  // counted here; Beast is only needed for chunked bodies
            state_ = state::body;
            return;
        }
    }
    parser_.reset();
    state_ = state::complete;
}

// ---- body --------------------------------------------------------------------------------------

std::size_t request_decoder::feed_body(std::string_view bytes, std::string& body) {
    if (parsed_.framing == body_framing::length) {
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), parsed_.content_length - body_bytes_));
        body.append(bytes.substr(0, take));
        body_bytes_ += take;
        if (body_bytes_ == parsed_.content_length) state_ = state::complete;
        return take;
    }

    // Chunked. Beast needs a chunk header (and the trailer section) whole: a partial one waits
    // in carry_ for the next bytes.
    const bool carried = !carry_.empty();
    if (carried) carry_.append(bytes);
    const std::string_view in = carried ? std::string_view(carry_) : bytes;

    auto& p = parser_->p;
    const std::size_t old = body.size();
    body.resize(old + in.size());  // decoded bytes never outnumber the encoded ones
    auto& out = p.get().body();
    out.data = body.data() + old;
    out.size = in.size();
    out.more = true;
    std::size_t used = 0;
    boost::beast::error_code ec;
    while (used < in.size() && !p.is_done()) {
        const std::size_t n = p.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
        used += n;
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (ec || n == 0) break;
    }
    const std::size_t decoded = in.size() - out.size;
    body.resize(old + decoded);
    body_bytes_ += decoded;
    if (ec) {
        fail(400, "Malformed chunked request body: " + ec.message() + ".");
        return bytes.size();
    }
    const std::size_t left = in.size() - used;
    std::size_t consumed;
    if (p.is_done()) {
        state_ = state::complete;
        parser_.reset();
        consumed = bytes.size() - std::min(left, bytes.size());  // the rest starts the next request
        std::string().swap(carry_);
    } else if (carried) {
        carry_.erase(0, used);
        consumed = bytes.size();
    } else {
        carry_.assign(in.substr(used));
        consumed = bytes.size();
    }
    if (carry_.size() > max_header_bytes_)
        fail(400, "Malformed chunked request body: a chunk header or the trailer section is too long.");
    return consumed;
}

}  // namespace aqd
