#include "batch_validator.hpp"

#include "batch_line/utf8.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <unordered_set>

namespace aq::files {
using aq::batch_line::utf8_validator;
using aq::batch_line::is_valid_utf8;
namespace {

namespace json = boost::json;
using json::error_code;
using json::string_view;

// A custom_id longer than this is refused rather than kept in memory.
constexpr std::size_t max_custom_id_bytes = 64 * 1024;

enum class slot { other, custom_id, method, url, body };

struct string_field {
    bool present = false;
    bool is_string = false;
    bool too_long = false;
    std::string value;

    void reset_as(bool string) {
        present = true;
        is_string = string;
        too_long = false;
        value.clear();
    }
};

// SAX handler: records only the top-level members the validator checks.
struct line_handler {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    int depth = 0;
    bool top_is_object = false;
    std::string key;       // the current top-level key, while it is being read (bounded)
    slot current = slot::other;
    string_field custom_id, method, url;
    enum class body_kind { absent, object, other } body = body_kind::absent;

    void clear() {
        depth = 0;
        top_is_object = false;
        key.clear();
        current = slot::other;
        custom_id = {};
        method = {};
        url = {};
        body = body_kind::absent;
    }

    string_field* field(slot s) {
        switch (s) {
        case slot::custom_id: return &custom_id;
        case slot::method: return &method;
        case slot::url: return &url;
        default: return nullptr;
        }
    }

    // A top-level member's value begins; `string` tells whether it is a string, `object` an object.
    void value_begins(bool string, bool object) {
        if (depth != 1) return;
        if (current == slot::body) body = object ? body_kind::object : body_kind::other;
        if (string_field* f = field(current)) f->reset_as(string);
    }
    void string_piece(string_view s) {
        if (depth != 1) return;
        string_field* f = field(current);
        if (!f || f->too_long) return;
        if (f->value.size() + s.size() > max_custom_id_bytes) {
            f->too_long = true;
            f->value.clear();
            return;
        }
        f->value.append(s.data(), s.size());
    }

    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_object_begin(error_code&) {
        if (depth == 0) top_is_object = true;
        value_begins(false, true);
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_array_begin(error_code&) {
        value_begins(false, false);
        ++depth;
        return true;
    }
    bool on_array_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_key_part(string_view s, std::size_t, error_code&) {
        if (depth == 1 && key.size() < 16) key.append(s.data(), std::min<std::size_t>(s.size(), 16));
        return true;
    }
    bool on_key(string_view s, std::size_t, error_code& ec) {
        on_key_part(s, 0, ec);
        if (depth == 1) {
            current = key == "custom_id" ? slot::custom_id
                      : key == "method"  ? slot::method
                      : key == "url"     ? slot::url
                      : key == "body"    ? slot::body
                                         : slot::other;
            key.clear();
        }
        return true;
    }
    bool on_string_part(string_view s, std::size_t n, error_code&) {
        if (n == s.size()) value_begins(true, false);  // first piece of this string
        string_piece(s);
        return true;
    }
    bool on_string(string_view s, std::size_t n, error_code&) {
        if (n == s.size()) value_begins(true, false);
        string_piece(s);
        return true;
    }
    bool on_number_part(string_view, error_code&) { return true; }
    bool on_int64(std::int64_t, string_view, error_code&) { return scalar(); }
    bool on_uint64(std::uint64_t, string_view, error_code&) { return scalar(); }
    bool on_double(double, string_view, error_code&) { return scalar(); }
    bool on_bool(bool, error_code&) { return scalar(); }
    bool on_null(error_code&) { return scalar(); }
    bool on_comment_part(string_view, error_code&) { return true; }
    bool on_comment(string_view, error_code&) { return true; }

    bool scalar() {
        value_begins(false, false);
        return true;
    }
};

json::parse_options line_options() {
    json::parse_options opt;
    opt.max_depth = 10000;  // request bodies (JSON schemas) nest; the parser's stack is small
    return opt;
}

}  // namespace

struct batch_validator::impl {
    json::basic_parser<line_handler> parser{line_options()};
    utf8_validator utf8;
    std::uint64_t line = 1;
    std::uint64_t requests = 0;
    bool started = false;   // the current line has a non-whitespace byte
    bool parsed = false;    // the current line's JSON value is complete
    std::unordered_set<std::string> ids;

    [[noreturn]] void fail(std::string_view what) const {
        throw error(std::string(what) + " at line " + std::to_string(line));
    }

    static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

    // Bytes of one line (no '\n').
    void feed(std::string_view s) {
        if (!utf8.feed(s)) fail("Invalid UTF-8");
        if (!started) {
            while (!s.empty() && blank(s.front())) s.remove_prefix(1);
            if (s.empty()) return;
            started = true;
            parser.reset();
            parser.handler().clear();
        }
        if (!parsed) {
            error_code ec;
            std::size_t used = parser.write_some(true, s.data(), s.size(), ec);
            if (ec) fail("Invalid JSON");
            s.remove_prefix(used);
            parsed = parser.done();
        }
        for (char c : s)
            if (!blank(c)) fail("Invalid JSON");
    }

    void end_line() {
        if (!utf8.complete()) fail("Invalid UTF-8");
        if (!started) return;
        if (!parsed) {
            error_code ec;
            parser.write_some(false, nullptr, 0, ec);
            if (ec || !parser.done()) fail("Invalid JSON");
        }
        check(parser.handler());
        ++requests;
        started = parsed = false;
    }

    void check(line_handler& h) {
        if (!h.top_is_object) fail("Invalid request (not a JSON object)");
        if (!h.custom_id.present) fail("Missing custom_id");
        if (h.custom_id.too_long) fail("Invalid custom_id (longer than 65536 bytes)");
        if (!h.custom_id.is_string || h.custom_id.value.empty()) fail("Invalid custom_id (must be a non-empty string)");
        if (!h.method.present) fail("Missing method");
        if (!h.method.is_string || h.method.value != "POST") fail("Invalid method (must be POST)");
        if (!h.url.present) fail("Missing url");
        if (!h.url.is_string || !supported_url(h.url.value)) fail("Unsupported url");
        if (h.body == line_handler::body_kind::absent) fail("Missing body");
        if (h.body != line_handler::body_kind::object) fail("Invalid body (must be a JSON object)");
        if (!ids.insert(std::move(h.custom_id.value)).second) fail("Duplicate custom_id");
    }
};

batch_validator::batch_validator() : impl_(std::make_unique<impl>()) {}
batch_validator::~batch_validator() = default;

void batch_validator::push(std::string_view chunk) {
    while (!chunk.empty()) {
        auto nl = chunk.find('\n');
        impl_->feed(chunk.substr(0, nl));
        if (nl == std::string_view::npos) return;
        impl_->end_line();
        ++impl_->line;
        chunk.remove_prefix(nl + 1);
    }
}

void batch_validator::finish() {
    impl_->end_line();
    if (impl_->requests == 0) throw error("The batch file contains no requests");
}

std::uint64_t batch_validator::requests() const noexcept { return impl_->requests; }

bool batch_validator::supported_url(std::string_view url) noexcept {
    return url == "/v1/chat/completions" || url == "/v1/completions" || url == "/v1/embeddings" ||
           url == "/v1/responses";
}

}  // namespace aq::files
