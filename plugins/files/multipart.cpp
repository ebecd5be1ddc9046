#include "multipart.hpp"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

namespace aq::files {
namespace {

constexpr std::size_t max_padding = 256;  // transport padding tolerated after a boundary

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// A header value's type and parameters: `type; key=value; key="quoted \" value"`.
// Keys are lowercased. A quoted string keeps its inner bytes with backslash escapes removed.
struct header_value {
    std::string type;
    std::vector<std::pair<std::string, std::string>> params;

    const std::string* find(std::string_view key) const {
        for (const auto& [k, v] : params)
            if (k == key) return &v;
        return nullptr;
    }
};

header_value parse_header_value(std::string_view s) {
    header_value out;
    std::size_t i = s.find(';');
    out.type = std::string(trim(s.substr(0, i)));
    while (i != std::string_view::npos && i < s.size()) {
        ++i;  // past ';'
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        if (i >= s.size()) break;
        std::size_t eq = s.find_first_of("=;", i);
        if (eq == std::string_view::npos || s[eq] == ';') {  // a bare token: ignore it
            i = eq;
            continue;
        }
        std::string key(trim(s.substr(i, eq - i)));
        std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
        i = eq + 1;
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        std::string value;
        if (i < s.size() && s[i] == '"') {
            ++i;
            bool closed = false;
            while (i < s.size()) {
                char c = s[i++];
                if (c == '\\' && i < s.size()) {
                    value.push_back(s[i++]);
                } else if (c == '"') {
                    closed = true;
                    break;
                } else {
                    value.push_back(c);
                }
            }
            if (!closed) throw multipart::error("Malformed multipart part header: unterminated quoted string.");
            i = s.find(';', i);
        } else {
            std::size_t end = s.find(';', i);
            value = std::string(trim(s.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i)));
            i = end;
        }
        out.params.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

// RFC 5987 ext-value: charset'language'percent-encoded. UTF-8 (and its ASCII subset) only;
// nullopt for another charset or a malformed value, so the plain filename is used instead.
std::optional<std::string> decode_ext_value(std::string_view v) {
    auto q1 = v.find('\'');
    if (q1 == std::string_view::npos) return std::nullopt;
    auto q2 = v.find('\'', q1 + 1);
    if (q2 == std::string_view::npos) return std::nullopt;
    std::string_view charset = v.substr(0, q1);
    if (!iequals(charset, "utf-8") && !iequals(charset, "us-ascii")) return std::nullopt;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    std::string_view enc = v.substr(q2 + 1);
    for (std::size_t i = 0; i < enc.size(); ++i) {
        if (enc[i] == '%') {
            if (i + 2 >= enc.size() || hex(enc[i + 1]) < 0 || hex(enc[i + 2]) < 0) return std::nullopt;
            out.push_back(static_cast<char>(hex(enc[i + 1]) * 16 + hex(enc[i + 2])));
            i += 2;
        } else {
            out.push_back(enc[i]);
        }
    }
    return out;
}

}  // namespace

multipart::multipart(std::string_view boundary, callbacks cb, std::size_t max_header_bytes)
    : delimiter_("\r\n--" + std::string(boundary)), cb_(std::move(cb)), max_header_bytes_(max_header_bytes) {
    // The first boundary has no CRLF before it; pretending one was there lets a single search
    // for "\r\n--boundary" find it, whether or not a preamble precedes it.
    pending_ = "\r\n";
}

void multipart::push(std::string_view chunk) {
    if (state_ == state::epilogue) return;
    pending_.append(chunk);
    std::size_t pos = 0;
    const std::size_t d = delimiter_.size();
    for (bool more = true; more;) {
        std::string_view rest(pending_.data() + pos, pending_.size() - pos);
        switch (state_) {
        case state::preamble: {
            auto at = rest.find(delimiter_);
            if (at == std::string_view::npos) {
                if (rest.size() >= d) pos += rest.size() - (d - 1);
                more = false;
            } else {
                pos += at + d;
                state_ = state::after_boundary;
            }
            break;
        }
        case state::after_boundary: {
            std::size_t i = 0;
            while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
            if (i > max_padding) throw error("Malformed multipart body: unexpected bytes after a boundary.");
            if (rest.size() < i + 2) {
                more = false;
                break;
            }
            std::string_view next = rest.substr(i, 2);
            if (next == "--") {
                state_ = state::epilogue;
                pending_.clear();
                return;
            }
            if (next != "\r\n") throw error("Malformed multipart body: unexpected bytes after a boundary.");
            pos += i + 2;
            state_ = state::headers;
            break;
        }
        case state::headers: {
            if (rest.size() < 2) {
                more = false;
                break;
            }
            std::size_t end = 0, skip = 2;  // a part without headers starts with CRLF at once
            if (!rest.starts_with("\r\n")) {
                end = rest.find("\r\n\r\n");
                skip = 4;
                if (end == std::string_view::npos) {
                    // The blank line may still start within the limit when up to 3 of its 4 bytes
                    // are here: refuse only when it cannot, so the verdict does not depend on where
                    // the body was split.
                    if (rest.size() > max_header_bytes_ + 3) throw error("Multipart part headers are too large.");
                    more = false;
                    break;
                }
            }
            if (end > max_header_bytes_) throw error("Multipart part headers are too large.");
            parse_headers(rest.substr(0, end));
            pos += end + skip;
            state_ = state::body;
            break;
        }
        case state::body: {
            auto at = rest.find(delimiter_);
            if (at != std::string_view::npos) {
                if (at > 0) cb_.on_data(rest.substr(0, at));
                cb_.on_end();
                pos += at + d;
                state_ = state::after_boundary;
                break;
            }
            // Hand out everything except a tail that could be the start of a delimiter.
            std::size_t keep = 0;
            for (std::size_t s = rest.size() > d - 1 ? rest.size() - (d - 1) : 0; s < rest.size(); ++s) {
                if (rest[s] == '\r' && delimiter_.compare(0, rest.size() - s, rest.substr(s)) == 0) {
                    keep = rest.size() - s;
                    break;
                }
            }
            if (rest.size() > keep) cb_.on_data(rest.substr(0, rest.size() - keep));
            pos += rest.size() - keep;
            more = false;
            break;
        }
        case state::epilogue:
            more = false;
            break;
        }
    }
    pending_.erase(0, pos);
}

void multipart::finish() {
    switch (state_) {
    case state::epilogue: return;
    case state::preamble: throw error("The multipart body contains no parts.");
    default: throw error("The multipart body is truncated: its closing boundary is missing.");
    }
}

void multipart::parse_headers(std::string_view block) {
    // Unfold obsolete line folding, then read "Name: value" lines.
    std::vector<std::string> lines;
    while (!block.empty()) {
        auto eol = block.find("\r\n");
        std::string_view line = block.substr(0, eol);
        block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
        if (!lines.empty() && !line.empty() && (line.front() == ' ' || line.front() == '\t'))
            lines.back().append(" ").append(trim(line));
        else
            lines.emplace_back(line);
    }
    part p;
    bool disposition = false;
    for (const std::string& line : lines) {
        auto colon = line.find(':');
        if (colon == std::string::npos) throw error("Malformed multipart part header.");
        std::string_view name = trim(std::string_view(line).substr(0, colon));
        std::string_view value = trim(std::string_view(line).substr(colon + 1));
        if (iequals(name, "content-disposition")) {
            header_value hv = parse_header_value(value);
            disposition = true;
            if (const auto* n = hv.find("name")) p.name = *n;
            if (const auto* f = hv.find("filename")) p.filename = *f;
            if (const auto* f = hv.find("filename*"))
                if (auto decoded = decode_ext_value(*f)) p.filename = std::move(*decoded);
        } else if (iequals(name, "content-type")) {
            p.content_type = std::string(value);
        }
    }
    if (!disposition) throw error("A multipart part has no Content-Disposition header.");
    cb_.on_begin(p);
}

std::optional<std::string> multipart::boundary_of(std::string_view content_type) {
    header_value hv;
    try {
        hv = parse_header_value(content_type);
    } catch (const error&) {
        return std::nullopt;
    }
    if (!iequals(hv.type, "multipart/form-data")) return std::nullopt;
    const std::string* b = hv.find("boundary");
    // RFC 2046 allows 1..70 characters; be lenient on length but refuse what cannot work.
    if (!b || b->empty() || b->size() > 200) return std::nullopt;
    for (char c : *b)
        if (c == '\r' || c == '\n') return std::nullopt;
    return *b;
}

}  // namespace aq::files
