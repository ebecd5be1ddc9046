#include "model_rewrite.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <optional>

namespace batches {

namespace {

// A small scanner over text the batch-line validator already accepted as a JSON object: it
// only needs to find member boundaries, not to judge the JSON again.
struct scanner {
    std::string_view s;
    std::size_t i = 0;

    bool at_end() const { return i >= s.size(); }
    char peek() const { return at_end() ? '\0' : s[i]; }
    void skip_ws() {
        while (!at_end() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // Reads a string at s[i] == '"'; its decoded text when `decode`, with every non-ASCII
    // escape as '\x01' (enough to compare against an ASCII key). nullopt: malformed.
    std::optional<std::string> string(bool decode) {
        std::string out;
        ++i;
        while (!at_end()) {
            char c = s[i++];
            if (c == '"') return out;
            if (c != '\\') {
                if (decode) out.push_back(c);
                continue;
            }
            if (at_end()) return std::nullopt;
            char e = s[i++];
            if (!decode) {
                if (e == 'u') i += 4;
                continue;
            }
            switch (e) {
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    if (i + 4 > s.size()) return std::nullopt;
                    int cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        int h = hex(s[i++]);
                        if (h < 0) return std::nullopt;
                        cp = cp * 16 + h;
                    }
                    out.push_back(cp < 0x80 ? static_cast<char>(cp) : '\x01');
                    break;
                }
                default: out.push_back(e);  // \" \\ \/
            }
        }
        return std::nullopt;
    }

    // Skips one value; false when malformed.
    bool skip_value() {
        if (peek() == '"') return string(false).has_value();
        if (peek() == '{' || peek() == '[') {
            int depth = 0;
            while (!at_end()) {
                char c = s[i];
                if (c == '"') {
                    if (!string(false)) return false;
                    continue;
                }
                ++i;
                if (c == '{' || c == '[') ++depth;
                else if ((c == '}' || c == ']') && --depth == 0) return true;
            }
            return false;
        }
        std::size_t start = i;
        while (!at_end() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
               s[i] != '\n' && s[i] != '\r')
            ++i;
        return i > start;
    }
};

struct value_span {
    std::size_t begin, end;
};

std::optional<value_span> top_level_model(std::string_view body) {
    scanner sc{body};
    sc.skip_ws();
    if (sc.peek() != '{') return std::nullopt;
    ++sc.i;
    for (;;) {
        sc.skip_ws();
        if (sc.peek() != '"') return std::nullopt;  // '}' (empty object) or malformed
        auto key = sc.string(true);
        if (!key) return std::nullopt;
        sc.skip_ws();
        if (sc.peek() != ':') return std::nullopt;
        ++sc.i;
        sc.skip_ws();
        std::size_t begin = sc.i;
        if (!sc.skip_value()) return std::nullopt;
        if (*key == "model") return value_span{begin, sc.i};
        sc.skip_ws();
        if (sc.peek() != ',') return std::nullopt;
        ++sc.i;
    }
}

}  // namespace

std::string with_model(std::string_view body, std::string_view model) {
    auto span = top_level_model(body);
    if (!span) return std::string(body);
    std::string out;
    std::string value = boost::json::serialize(boost::json::string(model));
    out.reserve(body.size() - (span->end - span->begin) + value.size());
    out.append(body.substr(0, span->begin)).append(value).append(body.substr(span->end));
    return out;
}

}  // namespace batches
