#include "batch_line/line_rules.hpp"

#include "batch_line/escape_mask.hpp"

#include <boost/json/basic_parser_impl.hpp>

namespace aq::batch_line {
namespace {

namespace json = boost::json;
using json::error_code;
using json::string_view;

enum class slot { other, custom_id, method, url, body };
enum class kind { absent, string, object, other };

// A top-level string the rules read, kept up to its cap (one byte more marks "too long").
struct field {
    kind type = kind::absent;
    bool seen_key = false;
    std::size_t bytes = 0;  // the whole decoded length, kept or not
    std::string value;
    std::size_t cap = 0;

    void clear() {
        type = kind::absent;
        seen_key = false;
        bytes = 0;
        value.clear();
    }
    void append(string_view s) {
        bytes += s.size();
        if (value.size() < cap) value.append(s.data(), std::min(s.size(), cap - value.size()));
    }
    bool too_long() const { return bytes > cap; }
};

// SAX handler: records the top-level members custom_id, method, url, body, and body.model.
struct line_handler {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    static constexpr std::size_t key_cap = 16;  // longer keys are none of ours

    std::size_t depth = 0;
    bool top_is_object = false;
    std::string key;
    bool key_long = false;
    slot current = slot::other;  // the top-level member whose value is being read
    bool in_model = false;       // the body member being read is "model"
    std::size_t members = 0;
    std::size_t body_index = 0;
    kind body = kind::absent;
    bool body_seen = false, model_seen = false;
    field custom_id, method, url, model;
    field* target = nullptr;     // the field a string being read goes to
    std::string duplicate;       // the first checked key given twice

    line_handler(const limits& lim) {
        custom_id.cap = lim.max_custom_id_bytes;
        method.cap = 16;
        url.cap = 64;
        model.cap = lim.max_model_bytes;
    }

    void clear() {
        depth = 0;
        top_is_object = false;
        key.clear();
        key_long = false;
        current = slot::other;
        in_model = false;
        members = body_index = 0;
        body = kind::absent;
        body_seen = model_seen = false;
        custom_id.clear();
        method.clear();
        url.clear();
        model.clear();
        target = nullptr;
        duplicate.clear();
    }

    field* field_of(slot s) {
        switch (s) {
        case slot::custom_id: return &custom_id;
        case slot::method: return &method;
        case slot::url: return &url;
        default: return nullptr;
        }
    }
    bool reading_body_member() const { return depth == 2 && current == slot::body; }

    // A value begins at the current depth.
    void value_begins(kind k) {
        if (depth == 1) {
            if (field* f = field_of(current)) {
                f->type = k;
                if (k == kind::string) target = f;
            } else if (current == slot::body) {
                body = k;
            }
        } else if (reading_body_member() && in_model) {
            model.type = k;
            if (k == kind::string) target = &model;
        }
    }

    void key_piece(string_view s) {
        if (depth != 1 && !reading_body_member()) return;
        if (key.size() + s.size() > key_cap) key_long = true;
        else key.append(s.data(), s.size());
    }
    void key_done() {
        // string_view compares lengths first: most keys are rejected without a memcmp.
        const std::string_view k = key_long ? std::string_view() : std::string_view(key);
        if (depth == 1) {
            current = k == "custom_id" ? slot::custom_id
                      : k == "method"  ? slot::method
                      : k == "url"     ? slot::url
                      : k == "body"    ? slot::body
                                       : slot::other;
            if (field* f = field_of(current)) {
                if (f->seen_key && duplicate.empty()) duplicate = key;
                f->seen_key = true;
            } else if (current == slot::body) {
                if (body_seen && duplicate.empty()) duplicate = key;
                body_seen = true;
                body_index = members;
            }
            ++members;
        } else if (reading_body_member()) {
            in_model = k == "model";
            if (in_model) {
                if (model_seen && duplicate.empty()) duplicate = "body.model";
                model_seen = true;
            }
        }
        key.clear();
        key_long = false;
    }

    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_object_begin(error_code&) {
        if (depth == 0) top_is_object = true;
        value_begins(kind::object);
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_array_begin(error_code&) {
        value_begins(kind::other);
        ++depth;
        return true;
    }
    bool on_array_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_key_part(string_view s, std::size_t, error_code&) {
        key_piece(s);
        return true;
    }
    bool on_key(string_view s, std::size_t, error_code&) {
        key_piece(s);
        key_done();
        return true;
    }
    bool on_string_part(string_view s, std::size_t n, error_code&) {
        if (n == s.size()) value_begins(kind::string);  // the first piece of this string
        if (target) target->append(s);
        return true;
    }
    bool on_string(string_view s, std::size_t n, error_code&) {
        if (n == s.size()) value_begins(kind::string);
        if (target) target->append(s);
        target = nullptr;
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
        value_begins(kind::other);
        return true;
    }
};

json::parse_options line_options() {
    json::parse_options opt;
    opt.max_depth = 10000;           // request bodies (JSON schemas) nest; the parser's stack is small
    opt.allow_invalid_utf8 = true;   // the validator checks UTF-8 over the whole line, once
    return opt;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

problem broken(std::string code, std::string message, std::string param) {
    return problem{0, std::move(code), std::move(message), std::move(param)};
}

std::optional<problem> string_rule(const field& f, std::string_view name, std::size_t cap_reported) {
    const std::string n(name);
    if (f.type == kind::absent) return broken("invalid_request", "Missing " + n, n);
    if (f.type != kind::string || f.bytes == 0)
        return broken("invalid_request", "Invalid " + n + " (must be a non-empty string)", n);
    if (f.too_long())
        return broken("invalid_request", "Invalid " + n + " (longer than " + std::to_string(cap_reported) + " bytes)", n);
    return std::nullopt;
}

}  // namespace

struct line_parser::impl {
    json::basic_parser<line_handler> parser;
    escape_mask mask;  // what the parser is given: the line with its deep escapes masked
    bool failed = false;

    explicit impl(const limits& lim) : parser(line_options(), lim) {}
    line_handler& h() { return parser.handler(); }
    const line_handler& h() const { return const_cast<impl*>(this)->parser.handler(); }
};

line_parser::line_parser(const limits& lim) : impl_(std::make_unique<impl>(lim)) {}
line_parser::~line_parser() = default;

void line_parser::reset() {
    impl_->parser.reset();
    impl_->h().clear();
    impl_->mask.reset();
    impl_->failed = false;
}

bool line_parser::write(std::string_view bytes) {
    if (impl_->failed) return false;
    bytes = impl_->mask.apply(bytes);
    if (!impl_->parser.done()) {
        error_code ec;
        std::size_t used = impl_->parser.write_some(true, bytes.data(), bytes.size(), ec);
        if (ec) return !(impl_->failed = true);
        bytes.remove_prefix(used);
    }
    for (char c : bytes)
        if (!blank(c)) return !(impl_->failed = true);
    return true;
}

bool line_parser::finish() {
    if (impl_->failed) return false;
    if (!impl_->parser.done()) {
        error_code ec;
        impl_->parser.write_some(false, nullptr, 0, ec);
        if (ec || !impl_->parser.done()) return !(impl_->failed = true);
    }
    return true;
}

std::optional<problem> line_parser::judge(const context& ctx) const {
    const line_handler& h = impl_->h();
    if (!h.top_is_object) return broken("invalid_json_line", "Invalid request (not a JSON object)", "");
    if (!h.duplicate.empty())
        return broken("invalid_request", "Invalid request (duplicate key '" + h.duplicate + "')", h.duplicate);
    if (auto p = string_rule(h.custom_id, "custom_id", h.custom_id.cap)) return p;
    if (h.method.type == kind::absent) return broken("invalid_request", "Missing method", "method");
    if (h.method.type != kind::string || h.method.too_long() || std::string_view(h.method.value) != "POST")
        return broken("invalid_request", "Invalid method (must be POST)", "method");
    if (h.url.type == kind::absent) return broken("invalid_request", "Missing url", "url");
    if (h.url.type != kind::string || h.url.too_long() || !supported_url(h.url.value))
        return broken("invalid_request", "Unsupported url", "url");
    if (ctx.endpoint && h.url.value != *ctx.endpoint)
        return broken("url_mismatch", "Invalid url (must be the batch's endpoint " + *ctx.endpoint + ")", "url");
    if (h.body == kind::absent) return broken("invalid_request", "Missing body", "body");
    if (h.body != kind::object) return broken("invalid_request", "Invalid body (must be a JSON object)", "body");
    if (auto p = string_rule(h.model, "body.model", h.model.cap)) return p;
    if (ctx.model_known && !ctx.model_known(h.model.value))
        return broken("model_not_found", "The model '" + h.model.value + "' is not available", "body.model");
    return std::nullopt;
}

std::string_view line_parser::custom_id() const noexcept { return impl_->h().custom_id.value; }
std::string_view line_parser::url() const noexcept { return impl_->h().url.value; }
std::string_view line_parser::model() const noexcept { return impl_->h().model.value; }
std::size_t line_parser::body_member() const noexcept { return impl_->h().body_index; }

bool supported_url(std::string_view url) noexcept {
    return url == "/v1/chat/completions" || url == "/v1/completions" || url == "/v1/embeddings" ||
           url == "/v1/responses";
}

std::string_view member_value(std::string_view text, std::size_t index) noexcept {
    std::size_t i = 0;
    const std::size_t n = text.size();
    auto skip_blank = [&] {
        while (i < n && (blank(text[i]) || text[i] == '\n')) ++i;
    };
    auto skip_string = [&] {  // at the opening quote
        for (++i; i < n && text[i] != '"'; ++i)
            if (text[i] == '\\') ++i;
        ++i;
    };
    auto skip_value = [&] {
        if (i < n && text[i] == '"') return skip_string();
        if (i < n && (text[i] == '{' || text[i] == '[')) {
            int depth = 0;
            while (i < n) {
                char c = text[i];
                if (c == '"') {
                    skip_string();
                    continue;
                }
                if (c == '{' || c == '[') ++depth;
                if (c == '}' || c == ']') --depth;
                ++i;
                if (depth == 0) return;
            }
            return;
        }
        while (i < n && text[i] != ',' && text[i] != '}' && !blank(text[i])) ++i;  // number, literal
    };
    skip_blank();
    ++i;  // '{'
    for (std::size_t member = 0; i < n; ++member) {
        skip_blank();
        skip_string();  // the key
        skip_blank();
        ++i;  // ':'
        skip_blank();
        std::size_t start = i;
        skip_value();
        if (member == index) return text.substr(start, i - start);
        skip_blank();
        ++i;  // ',' or '}'
    }
    return {};
}

}  // namespace aq::batch_line
