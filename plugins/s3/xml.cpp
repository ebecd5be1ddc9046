#include "xml.hpp"

#include <stdexcept>

namespace aq::s3 {

const xml_element* xml_element::child(std::string_view n) const {
    for (const auto& c : children)
        if (c.name == n) return &c;
    return nullptr;
}

std::string xml_element::child_text(std::string_view n) const {
    const xml_element* c = child(n);
    return c ? c->text : std::string();
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out.push_back(c);
        }
    }
    return out;
}

namespace {

constexpr int max_depth = 64;

class parser {
public:
    explicit parser(std::string_view doc) : s_(doc) {}

    xml_element document() {
        skip_misc();
        if (!at("<")) fail("expected the root element");
        xml_element root = element(0);
        skip_misc();
        if (pos_ != s_.size()) fail("content after the root element");
        return root;
    }

private:
    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error("malformed XML at byte " + std::to_string(pos_) + ": " + what);
    }
    bool at(std::string_view token) const { return s_.substr(pos_, token.size()) == token; }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n'))
            ++pos_;
    }
    void skip_past(std::string_view end, const char* what) {
        auto found = s_.find(end, pos_);
        if (found == std::string_view::npos) fail(what);
        pos_ = found + end.size();
    }
    // Whitespace, the XML declaration, processing instructions and comments around the root.
    void skip_misc() {
        for (;;) {
            skip_space();
            if (at("<?")) skip_past("?>", "unterminated processing instruction");
            else if (at("<!--")) skip_past("-->", "unterminated comment");
            else if (at("<!")) fail("DOCTYPE and other declarations are not accepted");
            else return;
        }
    }

    static bool name_char(char c) {
        return c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '>' && c != '/' && c != '=' && c != '<' &&
               c != '"' && c != '\'';
    }
    std::string_view name() {
        std::size_t start = pos_;
        while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
        if (pos_ == start) fail("expected a name");
        return s_.substr(start, pos_ - start);
    }

    static void append_utf8(std::string& out, unsigned long cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }

    // At '&': decodes one reference into `out`.
    void reference(std::string& out) {
        auto semi = s_.find(';', pos_);
        if (semi == std::string_view::npos || semi - pos_ > 12) fail("unterminated entity reference");
        std::string_view ref = s_.substr(pos_ + 1, semi - pos_ - 1);
        if (ref == "lt") out.push_back('<');
        else if (ref == "gt") out.push_back('>');
        else if (ref == "amp") out.push_back('&');
        else if (ref == "quot") out.push_back('"');
        else if (ref == "apos") out.push_back('\'');
        else if (ref.size() >= 2 && ref[0] == '#') {
            bool hex = ref[1] == 'x';
            std::string_view digits = ref.substr(hex ? 2 : 1);
            if (digits.empty()) fail("empty character reference");
            unsigned long cp = 0;
            for (char c : digits) {
                int v = -1;
                if (c >= '0' && c <= '9') v = c - '0';
                else if (hex && c >= 'a' && c <= 'f') v = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F') v = c - 'A' + 10;
                if (v < 0) fail("bad character reference");
                cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(v);
                if (cp > 0x10FFFF) fail("character reference out of range");
            }
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) fail("character reference out of range");
            append_utf8(out, cp);
        } else {
            fail("unknown entity (only the predefined ones exist without a DOCTYPE)");
        }
        pos_ = semi + 1;
    }

    void attributes() {
        for (;;) {
            skip_space();
            if (pos_ >= s_.size()) fail("unterminated start tag");
            if (s_[pos_] == '>' || s_[pos_] == '/') return;
            name();
            skip_space();
            if (!at("=")) fail("expected '=' after an attribute name");
            ++pos_;
            skip_space();
            if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) fail("expected a quoted attribute value");
            char quote = s_[pos_++];
            auto end = s_.find(quote, pos_);
            if (end == std::string_view::npos) fail("unterminated attribute value");
            pos_ = end + 1;
        }
    }

    // At '<' of a start tag.
    xml_element element(int depth) {
        if (depth >= max_depth) fail("nesting too deep");
        ++pos_;
        xml_element e;
        e.name = std::string(name());
        attributes();
        if (at("/>")) {
            pos_ += 2;
            return e;
        }
        ++pos_;  // '>'
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated element");
            char c = s_[pos_];
            if (c == '&') {
                reference(e.text);
            } else if (c != '<') {
                e.text.push_back(c);
                ++pos_;
            } else if (at("</")) {
                pos_ += 2;
                if (name() != e.name) fail("mismatched end tag");
                skip_space();
                if (!at(">")) fail("expected '>'");
                ++pos_;
                return e;
            } else if (at("<!--")) {
                skip_past("-->", "unterminated comment");
            } else if (at("<![CDATA[")) {
                pos_ += 9;
                auto end = s_.find("]]>", pos_);
                if (end == std::string_view::npos) fail("unterminated CDATA section");
                e.text.append(s_.substr(pos_, end - pos_));
                pos_ = end + 3;
            } else if (at("<?")) {
                skip_past("?>", "unterminated processing instruction");
            } else if (at("<!")) {
                fail("declarations are not accepted inside elements");
            } else {
                e.children.push_back(element(depth + 1));
            }
        }
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

}  // namespace

xml_element parse_xml(std::string_view document) { return parser(document).document(); }

}  // namespace aq::s3
