#include "request_decoder.hpp"

#include "ascii.hpp"

#include <aqueduct/plugin.hpp>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

namespace aqd {

namespace http = boost::beast::http;

namespace {


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
constexpr std::string_view bad_chunked = "Malformed chunked request body: ";

bool bws(char c) { return c == ' ' || c == '\t'; }

// qdtext and the octets a quoted-pair may escape (RFC 9110 §5.6.4).
bool qdtext(unsigned char c) {
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
bool quotable(unsigned char c) { return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80; }

// chunk-size [ chunk-ext ], where
//   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-val = token / quoted-string
bool parse_chunk_line(std::string_view s, std::uint64_t& size) {
    std::size_t i = 0;
    std::uint64_t v = 0;
    for (; i < s.size() && aq::hex_value(s[i]) >= 0; ++i) {
        if (v > (UINT64_MAX >> 4)) return false;
        v = v * 16 + static_cast<std::uint64_t>(aq::hex_value(s[i]));
    }
    if (i == 0) return false;
    auto skip_bws = [&](std::size_t j) {
        while (j < s.size() && bws(s[j])) ++j;
        return j;
    };
    auto token = [&](std::size_t& j) {
        const std::size_t start = j;
        while (j < s.size() && is_tchar(s[j])) ++j;
        return j > start;
    };
    while (i < s.size()) {
        i = skip_bws(i);
        if (i == s.size() || s[i] != ';') return false;
        i = skip_bws(i + 1);
        if (!token(i)) return false;
        const std::size_t j = skip_bws(i);
        if (j < s.size() && s[j] == '=') {
            i = skip_bws(j + 1);
            if (i < s.size() && s[i] == '"') {
                for (++i;; ++i) {
                    if (i == s.size()) return false;
                    const auto c = static_cast<unsigned char>(s[i]);
                    if (c == '"') break;
                    if (c == '\\') {
                        if (++i == s.size() || !quotable(static_cast<unsigned char>(s[i]))) return false;
                    } else if (!qdtext(c)) {
                        return false;
                    }
                }
                ++i;
            } else if (!token(i)) {
                return false;
            }
        }
    }
    size = v;
    return true;
}

// field-name ":" OWS field-value OWS, values without control characters but HTAB.
bool trailer_field(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && is_tchar(s[i])) ++i;
    if (i == 0 || i == s.size() || s[i] != ':') return false;
    for (++i; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

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
    std::string().swap(line_);
}

std::size_t request_decoder::feed(std::string_view bytes, std::string& body) {
    std::string scratch;
    std::string_view piece;
    const std::size_t used = feed(bytes, scratch, piece);
    body.append(piece);
    return used;
}

std::size_t request_decoder::feed(std::string_view bytes, std::string& scratch, std::string_view& piece) {
    piece = {};
    switch (state_) {
    case state::head: return feed_head(bytes);
    case state::body:
        if (parsed_.framing == body_framing::chunked) {
            scratch.clear();
            const std::size_t used = feed_chunked(bytes, scratch);
            piece = scratch;
            return used;
        }
        {
            const std::size_t take =
                static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), parsed_.content_length - body_bytes_));
            piece = bytes.substr(0, take);
            body_bytes_ += take;
            if (body_bytes_ == parsed_.content_length) state_ = state::complete;
            return take;
        }
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
    // "HTTP/2.0" and the like: a version this host does not speak is 505, which Beast would
    // report as a malformed request line.
    const std::string_view line(head_.data(), head_.find("\r\n"));
    if (line.size() >= 8 && line.substr(line.size() - 8, 5) == "HTTP/" && line[line.size() - 3] != '1' &&
        line[line.size() - 3] >= '0' && line[line.size() - 3] <= '9' && line[line.size() - 2] == '.')
        return fail(505, "HTTP version " + std::string(line.substr(line.size() - 3)) + " is not supported; use HTTP/1.1.");

    http::request_parser<http::empty_body> p;
    p.header_limit(static_cast<std::uint32_t>(head_.size() + 1));
    p.body_limit(boost::none);  // route limits are the connection's, with a proper answer
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
    // Beast knows the framing too; the fields are checked below, by this host's rules.

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
                for (char c : item) bad_token = bad_token || !is_tchar(c);
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
        chunk_ = chunk_part::size_line;
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
            state_ = state::body;
            return;
        }
    }
    state_ = state::complete;
}

// ---- chunked body ------------------------------------------------------------------------------

std::size_t request_decoder::feed_chunked(std::string_view in, std::string& body) {
    std::size_t used = 0;
    while (used < in.size() && state_ == state::body) {
        switch (chunk_) {
        case chunk_part::data: {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, in.size() - used));
            body.append(in.substr(used, n));
            used += n;
            chunk_left_ -= n;
            body_bytes_ += n;
            if (chunk_left_ == 0) chunk_ = chunk_part::data_end;
            break;
        }
        case chunk_part::data_end: {
            // Exactly CRLF after the data: anything else means the size lied.
            const char c = in[used++];
            if (c != (line_.empty() ? '\r' : '\n')) {
                fail(400, std::string(bad_chunked) + "chunk data is not followed by CRLF.");
                break;
            }
            line_.push_back(c);
            if (line_.size() == 2) {
                line_.clear();
                chunk_ = chunk_part::size_line;
            }
            break;
        }
        case chunk_part::size_line:
        case chunk_part::trailer: {
            const std::size_t lf = in.find('\n', used);
            const std::size_t end = lf == std::string_view::npos ? in.size() : lf + 1;
            const std::size_t old = line_.size();
            line_.append(in.substr(used, end - used));
            used = end;
            // A CR anywhere but right before the LF is a bare CR: refuse it as soon as it shows.
            const std::size_t cr = line_.find('\r', old ? old - 1 : 0);
            if (cr != std::string::npos && cr + 1 < line_.size() && line_[cr + 1] != '\n') {
                fail(400, std::string(bad_chunked) + "a CR not followed by LF.");
                break;
            }
            if (chunk_ == chunk_part::size_line && line_.size() > max_chunk_line) {
                fail(400, std::string(bad_chunked) + "a chunk-size line longer than " + std::to_string(max_chunk_line) +
                              " bytes.");
                break;
            }
            if (chunk_ == chunk_part::trailer && trailer_bytes_ + line_.size() > max_header_bytes_) {
                fail(431, "Request header fields are too large (trailer section).");
                break;
            }
            if (lf != std::string_view::npos) line_complete();
            break;
        }
        }
    }
    return used;
}

// A chunk-size line or a trailer line has arrived whole (line_ ends with LF).
void request_decoder::line_complete() {
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r')
        return fail(400, std::string(bad_chunked) + "a bare LF (lines end with CRLF).");
    const std::string_view text(line_.data(), line_.size() - 2);
    if (chunk_ == chunk_part::size_line) {
        std::uint64_t size = 0;
        if (!parse_chunk_line(text, size))
            return fail(400, std::string(bad_chunked) + "invalid chunk size or chunk extension.");
        chunk_left_ = size;
        chunk_ = size == 0 ? chunk_part::trailer : chunk_part::data;
    } else if (text.empty()) {
        state_ = state::complete;  // the empty line after the trailer section
    } else {
        if (!trailer_field(text)) return fail(400, std::string(bad_chunked) + "an invalid trailer field.");
        trailer_bytes_ += line_.size();
    }
    line_.clear();
}

}  // namespace aqd
