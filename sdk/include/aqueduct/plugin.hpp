// Header-only C++20 layer over abi.h, compiled into each plugin.
//
// It turns the C contract into ordinary C++: string_view instead of aq_str, exceptions instead
// of status codes inside the plugin, and std::function handlers. Every callback the host calls
// goes through a noexcept trampoline here, so an exception never crosses the ABI: an escaping
// aq::http_error becomes its OpenAI error envelope, anything else a logged 500 (or, when the
// response has already begun, an aborted response).
//
// Usage:
//
//   static aq_status init(aq::host& host) {
//       host.route("GET", "/hello", 0, [](aq::request& req) {
//           req.respond_json(200, {{"hello", req.principal_user()}});
//       });
//       return AQ_OK;
//   }
//   AQ_DEFINE_PLUGIN("hello", "1.0.0", init, nullptr)
#pragma once

#include "aqueduct/abi.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/random.h>

namespace aq {

inline aq_str to_aq(std::string_view s) noexcept { return aq_str{s.data(), s.size()}; }
inline std::string_view to_sv(aq_str s) noexcept { return s.len ? std::string_view(s.data, s.len) : std::string_view(); }

// An error a handler throws to answer with the OpenAI error envelope:
// {"error": {"message", "type", "param", "code"}}, `param` and `code` null when empty.
class http_error : public std::exception {
public:
    http_error(int status, std::string message, std::string param = {}, std::string code = {},
               std::string type = {})
        : status_(status), message_(std::move(message)), param_(std::move(param)),
          code_(std::move(code)), type_(std::move(type)) {
        if (type_.empty()) type_ = default_type(status_);
    }

    const char* what() const noexcept override { return message_.c_str(); }
    int status() const noexcept { return status_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& param() const noexcept { return param_; }
    const std::string& code() const noexcept { return code_; }
    const std::string& type() const noexcept { return type_; }
    // Seconds for a `retry-after` header on the answer (0: none), for 429 and 503.
    int retry_after() const noexcept { return retry_after_; }
    http_error& with_retry_after(int seconds) noexcept {
        retry_after_ = seconds;
        return *this;
    }

    // The error type OpenAI uses for each class of status.
    static const char* default_type(int status) noexcept {
        switch (status) {
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "invalid_request_error";
        case 409: return "conflict_error";
        case 413: return "invalid_request_error";
        case 429: return "rate_limit_error";
        default: return status >= 500 ? "server_error" : "invalid_request_error";
        }
    }

private:
    int status_;
    std::string message_, param_, code_, type_;
    int retry_after_ = 0;
};

// The envelope as JSON text. Shared by the host (404/405/401/413) and the plugins.
inline std::string error_envelope(std::string_view message, std::string_view type,
                                  std::string_view param = {}, std::string_view code = {}) {
    boost::json::object err;
    err["message"] = message;
    err["type"] = type;
    err["param"] = param.empty() ? boost::json::value(nullptr) : boost::json::value(param);
    err["code"] = code.empty() ? boost::json::value(nullptr) : boost::json::value(code);
    boost::json::object root;
    root["error"] = std::move(err);
    return boost::json::serialize(root);
}

// `prefix` + `length` random base62 characters from the kernel's CSPRNG, e.g.
// random_id("file-") -> "file-3kTMd9PzQ0aB...". The host names every request with one, so it
// reads all its bytes in one getrandom call: std::random_device took a call of about 800 ns per
// 4 bytes here, 4 us of a metadata GET's 36. A byte of 248 or more is dropped, so that the
// modulo picks all 62 characters alike.
inline std::string random_id(std::string_view prefix, std::size_t length = 24) {
    static constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string id(prefix);
    id.reserve(prefix.size() + length);
    unsigned char bytes[256];
    while (id.size() < prefix.size() + length) {
        // A few more than needed, for the ~3% that are dropped; up to 256 bytes never come short.
        const std::size_t want = std::min(sizeof bytes, prefix.size() + length - id.size() + 8);
        const ssize_t got = ::getrandom(bytes, want, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("getrandom failed");
        }
        for (ssize_t i = 0; i < got && id.size() < prefix.size() + length; ++i)
            if (bytes[i] < 248) id.push_back(alphabet[bytes[i] % 62]);
    }
    return id;
}

// The value of one hex digit, or -1.
inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes a query or path component ('+' is a space in queries). A '%' not followed by
// two hex digits is kept as it is.
inline std::string percent_decode(std::string_view in, bool plus_is_space = true) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// The first value of `name` in a raw query string, percent-decoded; nullopt when absent.
inline std::optional<std::string> query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = pair.find('=');
        std::string key = percent_decode(pair.substr(0, eq));
        if (key == name)
            return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    }
    return std::nullopt;
}

// Who owns a stored object. The key carries the owner's kind, so a team and a user with the same
// name never share anything: "user:alice", "team:research". Every plugin that stores objects per
// owner keys them with this (request::owner() does), and only this, so the keys of different
// plugins (a batch and its output files) always agree.
enum class owner_kind { user, team };
inline std::string owner_key(owner_kind kind, std::string_view name) {
    std::string key(kind == owner_kind::team ? "team:" : "user:");
    key.append(name);
    return key;
}

class request;
using handler = std::function<void(request&)>;

// A response body the host pulls as the client reads (request::respond_source). read() runs on a
// host worker thread after the handler returned, never twice at once; it fills `buf` and returns
// how many bytes it wrote, 0 at the end. An exception aborts the response (logged). The object
// is destroyed when the host no longer needs it, on whatever host thread lets go of it.
class body_source {
public:
    virtual ~body_source() = default;
    virtual std::size_t read(std::span<char> buf) = 0;
};

// A route's body limit and how a body over it is refused (default: 413, generic message).
struct body_limit {
    std::uint64_t max_bytes = 0;
    int status = 0;
    std::string message;
    std::string param;
};

// ---- metrics (ABI 1.2) ---------------------------------------------------------------------------
//
// A plugin registers its metric families in init and keeps series for the label values it uses;
// updating a series is one relaxed atomic operation in the host, from any thread:
//
//   aq::counter_family uploads = host.counter_family("aqueduct_files_uploads_total", "Uploads.", {"outcome"});
//   aq::counter stored = uploads.with({"stored"});   // once (a lock in the host), then:
//   stored.inc();                                    // on the hot path
//   aq::histogram latency = host.histogram("aqueduct_upstream_latency_seconds", "Latency.", {0.1, 1, 10});
//   latency.observe(0.25);
//
// Default-constructed series are inert (their updates do nothing), as are all series from a host
// without metrics.

class counter {
public:
    counter() = default;
    counter(const aq_host_api* api, aq_metric_series* s) noexcept : api_(api), s_(s) {}
    void add(std::uint64_t n) const noexcept {
        if (s_) api_->counter_add(s_, n);
    }
    void inc() const noexcept { add(1); }

private:
    const aq_host_api* api_ = nullptr;
    aq_metric_series* s_ = nullptr;
};

class gauge {
public:
    gauge() = default;
    gauge(const aq_host_api* api, aq_metric_series* s) noexcept : api_(api), s_(s) {}
    void set(std::int64_t v) const noexcept {
        if (s_) api_->gauge_set(s_, v);
    }
    void add(std::int64_t d) const noexcept {
        if (s_) api_->gauge_add(s_, d);
    }
    void inc() const noexcept { add(1); }
    void dec() const noexcept { add(-1); }

private:
    const aq_host_api* api_ = nullptr;
    aq_metric_series* s_ = nullptr;
};

class histogram {
public:
    histogram() = default;
    histogram(const aq_host_api* api, aq_metric_series* s) noexcept : api_(api), s_(s) {}
    void observe(double v) const noexcept {
        if (s_) api_->histogram_observe(s_, v);
    }

private:
    const aq_host_api* api_ = nullptr;
    aq_metric_series* s_ = nullptr;
};

// A family with label names; with() returns the series for one combination of values.
template <class Series>
class metric_family {
public:
    metric_family() = default;
    metric_family(const aq_host_api* api, aq_metric* m) noexcept : api_(api), m_(m) {}

    // Takes a lock in the host: look a series up once and keep it. Throws std::invalid_argument
    // when the host refuses the values (their count differs from the label names', or one is
    // not UTF-8 or over 256 bytes).
    Series with(std::initializer_list<std::string_view> values) const {
        if (!m_) return Series();
        std::vector<aq_str> v;
        v.reserve(values.size());
        for (std::string_view x : values) v.push_back(to_aq(x));
        aq_metric_series* s = api_->metric_series(m_, v.data(), v.size());
        if (!s) throw std::invalid_argument("metric series refused by host (label values)");
        return Series(api_, s);
    }

private:
    const aq_host_api* api_ = nullptr;
    aq_metric* m_ = nullptr;
};

using counter_family = metric_family<counter>;
using gauge_family = metric_family<gauge>;
using histogram_family = metric_family<histogram>;

// A plugin's view of the host: the function table plus typed helpers.
class host {
public:
    explicit host(const aq_host_api* api) noexcept : api_(api) {}

    const aq_host_api* api() const noexcept { return api_; }

    void log(aq_log_level level, std::string_view message) const noexcept {
        api_->log(api_->host, level, to_aq(message));
    }
    void debug(std::string_view m) const noexcept { log(AQ_LOG_DEBUG, m); }
    void info(std::string_view m) const noexcept { log(AQ_LOG_INFO, m); }
    void warn(std::string_view m) const noexcept { log(AQ_LOG_WARN, m); }
    void error(std::string_view m) const noexcept { log(AQ_LOG_ERROR, m); }

    bool stopping() const noexcept { return api_->stopping(api_->host); }

    // The plugin's config section, parsed. Throws std::runtime_error on malformed JSON (the host
    // validated it, so this means a bug).
    boost::json::object config() const {
        return boost::json::parse(to_sv(api_->config_json(api_->host))).as_object();
    }

    // Registers a route whose handler is a C++ callable. The callable lives until process exit
    // (plugins are never unloaded). Throws std::runtime_error when the host refuses the route.
    void route(std::string_view method, std::string_view pattern, std::uint64_t max_body_bytes,
               handler fn, std::uint32_t flags = 0) {
        route(method, pattern, body_limit{max_body_bytes, 0, {}, {}}, std::move(fn), flags);
    }
    void route(std::string_view method, std::string_view pattern, body_limit limit, handler fn,
               std::uint32_t flags = 0);

    // Registers a periodic job running `fn` every interval (+ up to jitter) milliseconds.
    void job(std::string_view name, std::uint32_t interval_ms, std::uint32_t jitter_ms,
             std::function<void()> fn);

    void provide(std::string_view name, std::uint32_t version, const void* table) {
        if (api_->register_service(api_->host, to_aq(name), version, table) != AQ_OK)
            throw std::runtime_error("service " + std::string(name) + " could not be registered");
    }

    template <class Table>
    const Table* service(std::string_view name, std::uint32_t version) const noexcept {
        return static_cast<const Table*>(api_->get_service(api_->host, to_aq(name), version));
    }

    // Metric families (ABI 1.2), registered during init. Throws std::runtime_error when the host
    // refuses the definition (it logs which rule was broken: see aq_metric_def). A host without
    // metrics gives inert series.
    ::aq::counter counter(std::string_view name, std::string_view help) const {
        return counter_family(name, help, {}).with({});
    }
    ::aq::counter_family counter_family(std::string_view name, std::string_view help,
                                        std::initializer_list<std::string_view> labels) const {
        return ::aq::counter_family(api_, register_metric(AQ_METRIC_COUNTER, name, help, labels, {}));
    }
    ::aq::gauge gauge(std::string_view name, std::string_view help) const { return gauge_family(name, help, {}).with({}); }
    ::aq::gauge_family gauge_family(std::string_view name, std::string_view help,
                                    std::initializer_list<std::string_view> labels) const {
        return ::aq::gauge_family(api_, register_metric(AQ_METRIC_GAUGE, name, help, labels, {}));
    }
    ::aq::histogram histogram(std::string_view name, std::string_view help, std::span<const double> buckets) const {
        return histogram_family(name, help, {}, buckets).with({});
    }
    ::aq::histogram_family histogram_family(std::string_view name, std::string_view help,
                                            std::initializer_list<std::string_view> labels,
                                            std::span<const double> buckets) const {
        return ::aq::histogram_family(api_, register_metric(AQ_METRIC_HISTOGRAM, name, help, labels, buckets));
    }

    // The plugin's readiness check (ABI 1.2; see aq_readiness_fn): GET /readyz answers 200 only
    // while it returns true. It runs on a host thread of its own and may block briefly; an
    // exception counts as "not ready". Registered during init; a host without readiness checks
    // ignores it.
    void readiness(std::function<bool()> check);

private:
    aq_metric* register_metric(aq_metric_kind kind, std::string_view name, std::string_view help,
                               std::initializer_list<std::string_view> labels, std::span<const double> buckets) const {
        if (!AQ_HAS_FIELD(api_, aq_host_api, histogram_observe)) return nullptr;
        std::vector<aq_str> names;
        for (std::string_view l : labels) names.push_back(to_aq(l));
        aq_metric_def def{};
        def.struct_size = sizeof def;
        def.kind = kind;
        def.name = to_aq(name);
        def.help = to_aq(help);
        def.label_names = names.data();
        def.label_count = names.size();
        def.buckets = buckets.data();
        def.bucket_count = buckets.size();
        aq_metric* m = nullptr;
        if (aq_status st = api_->register_metric(api_->host, &def, &m); st != AQ_OK)
            throw std::runtime_error("metric " + std::string(name) + " refused by host (status " + std::to_string(st) + ")");
        return m;
    }

    const aq_host_api* api_;
};

// One request, valid only inside its handler.
class request {
public:
    request(const aq_host_api* api, aq_request* req, const body_limit* limit = nullptr) noexcept
        : api_(api), req_(req), limit_(limit) {}

    std::string_view method() const noexcept { return to_sv(api_->request_method(req_)); }
    std::string_view path() const noexcept { return to_sv(api_->request_path(req_)); }
    std::string_view query() const noexcept { return to_sv(api_->request_query(req_)); }
    std::string_view id() const noexcept { return to_sv(api_->request_id(req_)); }
    std::int64_t content_length() const noexcept { return api_->request_content_length(req_); }

    std::string_view param(std::string_view name) const noexcept {
        aq_str v{};
        return api_->request_param(req_, to_aq(name), &v) ? to_sv(v) : std::string_view();
    }
    std::optional<std::string> query_param(std::string_view name) const { return query_value(query(), name); }
    std::optional<std::string_view> header(std::string_view name) const noexcept {
        aq_str v{};
        if (!api_->request_header(req_, to_aq(name), &v)) return std::nullopt;
        return to_sv(v);
    }

    const aq_principal* principal() const noexcept { return api_->request_principal(req_); }
    std::string_view principal_user() const noexcept {
        auto* p = principal();
        return p ? to_sv(p->user) : std::string_view();
    }
    // The owner key of what this request creates or reads: "team:NAME" for a team
    // (service-account) token, else "user:NAME" (see owner_key). Empty on public routes. A new
    // string each call: keep the string, not a string_view of it.
    std::string owner() const {
        auto* p = principal();
        if (!p) return {};
        return p->team.len ? owner_key(owner_kind::team, to_sv(p->team)) : owner_key(owner_kind::user, to_sv(p->user));
    }

    // Next body bytes into `buf`: > 0 bytes, 0 at the end. Throws http_error(413) past the
    // route's limit and client_gone when the client disconnected.
    std::size_t read(std::span<char> buf) {
        std::int64_t n = api_->read_body(req_, buf.data(), buf.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (n == -AQ_ERR_TOO_LARGE) {
            if (limit_ && limit_->status) throw http_error(limit_->status, limit_->message, limit_->param);
            throw http_error(413, "Request body is too large.");
        }
        throw client_gone();
    }

    // The whole body as a string, for small JSON bodies (the route's max_body_bytes bounds it).
    std::string read_all() {
        std::string body;
        char buf[16384];
        while (std::size_t n = read(buf)) body.append(buf, n);
        return body;
    }

    // The body parsed as a JSON object, or http_error(400) saying what is wrong.
    boost::json::object read_json_object() {
        std::string body = read_all();
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(body, ec);
        if (ec) throw http_error(400, "The request body is not valid JSON: " + ec.message() + ".");
        if (!v.is_object()) throw http_error(400, "The request body must be a JSON object.");
        return std::move(v.as_object());
    }

    void respond(int status, std::string_view body, std::span<const aq_header> headers = {}) {
        check(api_->respond(req_, status, headers.data(), headers.size(), to_aq(body)));
        answered_ = true;
    }
    void respond_json(int status, const boost::json::value& body) {
        static constexpr aq_header json[] = {{{"Content-Type", 12}, {"application/json", 16}}};
        respond(status, boost::json::serialize(body), json);
    }
    void respond_error(const http_error& e) {
        const std::string retry_after = e.retry_after() > 0 ? std::to_string(e.retry_after()) : std::string();
        const aq_header headers[] = {{{"Content-Type", 12}, {"application/json", 16}},
                                     {{"retry-after", 11}, to_aq(retry_after)}};
        respond(e.status(), error_envelope(e.message(), e.type(), e.param(), e.code()),
                std::span<const aq_header>(headers, retry_after.empty() ? 1 : 2));
    }

    void begin(int status, std::span<const aq_header> headers, std::int64_t content_length) {
        check(api_->begin_response(req_, status, headers.data(), headers.size(), content_length));
        answered_ = true;
        streaming_ = true;
    }
    void write(std::string_view chunk) { check(api_->write_response(req_, to_aq(chunk))); }
    void end() { check(api_->end_response(req_)); }

    // Answers with a body the host pulls from `source` while the client reads: the handler
    // returns right away and no thread waits on a slow client (ABI 1.1). content_length -1:
    // unknown (chunked). The host owns the source from here on.
    void respond_source(int status, std::span<const aq_header> headers, std::int64_t content_length,
                        std::unique_ptr<body_source> source);
    // Answers with `length` bytes of the open file `fd` from `offset`; the host sends them with
    // sendfile(2) and closes `fd` (also when it refuses the response) (ABI 1.1).
    void respond_file(int status, std::span<const aq_header> headers, int fd, std::uint64_t offset,
                      std::uint64_t length);

    bool answered() const noexcept { return answered_; }
    bool streaming() const noexcept { return streaming_; }

    // Thrown when the client disconnected: the handler unwinds (rolling back) and the
    // trampoline stays quiet, since nobody is left to answer.
    struct client_gone : std::exception {
        const char* what() const noexcept override { return "client disconnected"; }
    };

private:
    void check(aq_status st) {
        if (st == AQ_ERR_DISCONNECTED) throw client_gone();
        // The host refused the response and answered 500 itself (it logged why): nothing more
        // may be sent.
        if (st == AQ_ERR_INVALID) answered_ = true;
        if (st != AQ_OK) throw std::runtime_error("response refused by host (status " + std::to_string(st) + ")");
    }

    const aq_host_api* api_;
    aq_request* req_;
    const body_limit* limit_;
    bool answered_ = false;
    bool streaming_ = false;
};

namespace detail {

struct route_binding {
    const aq_host_api* api;
    handler fn;
    body_limit limit;
};

// The C face of a body_source: noexcept trampolines, as for handlers.
struct source_binding {
    const aq_host_api* api;
    std::unique_ptr<body_source> source;

    static std::int64_t read(void* ctx, void* buf, std::size_t cap) noexcept {
        auto* self = static_cast<source_binding*>(ctx);
        try {
            return static_cast<std::int64_t>(self->source->read(std::span<char>(static_cast<char*>(buf), cap)));
        } catch (const std::exception& e) {
            try {
                self->api->log(self->api->host, AQ_LOG_ERROR,
                               to_aq(std::string("response body source failed: ") + e.what()));
            } catch (...) {
            }
        } catch (...) {
        }
        return -static_cast<std::int64_t>(AQ_ERR_INTERNAL);
    }
    static void release(void* ctx) noexcept { delete static_cast<source_binding*>(ctx); }
};

struct job_binding {
    const aq_host_api* api;
    std::string name;
    std::function<void()> fn;
};

// The one place a handler's exceptions stop. noexcept: nothing crosses into the host.
inline void handler_trampoline(void* ctx, aq_request* raw) noexcept {
    auto* binding = static_cast<route_binding*>(ctx);
    host h(binding->api);
    request req(binding->api, raw, &binding->limit);
    auto fail = [&](int status, std::string_view message, std::string_view detail) noexcept {
        try {
            if (!req.answered()) {
                req.respond_error(http_error(status, std::string(message)));
            }
            // A streamed response that already began cannot change its status; the host sees it
            // unfinished when the handler returns and aborts the connection.
        } catch (...) {
        }
        if (!detail.empty()) {
            try {
                h.error(std::string("handler ") + std::string(req.method()) + " " + std::string(req.path()) +
                        " failed: " + std::string(detail));
            } catch (...) {
            }
        }
    };
    try {
        binding->fn(req);
    } catch (const http_error& e) {
        try {
            if (!req.answered()) req.respond_error(e);
        } catch (...) {
        }
    } catch (const request::client_gone&) {
        // Nothing to answer.
    } catch (const std::exception& e) {
        fail(500, "The server had an error while processing your request.", e.what());
    } catch (...) {
        fail(500, "The server had an error while processing your request.", "unknown exception");
    }
}

struct readiness_binding {
    const aq_host_api* api;
    std::function<bool()> check;

    static bool call(void* ctx) noexcept {
        auto* self = static_cast<readiness_binding*>(ctx);
        try {
            return self->check();
        } catch (const std::exception& e) {
            try {
                self->api->log(self->api->host, AQ_LOG_WARN, to_aq(std::string("readiness check failed: ") + e.what()));
            } catch (...) {
            }
        } catch (...) {
        }
        return false;
    }
};

inline void job_trampoline(void* ctx) noexcept {
    auto* binding = static_cast<job_binding*>(ctx);
    host h(binding->api);
    try {
        binding->fn();
    } catch (const std::exception& e) {
        try { h.error("job " + binding->name + " failed: " + e.what()); } catch (...) {}
    } catch (...) {
        h.error("job failed with an unknown exception");
    }
}

// Calls a C++ init, turning any exception into a failed init with a reported reason.
template <class Init>
aq_status init_trampoline(const aq_host_api* api, void** plugin_ctx, Init&& init) noexcept {
    try {
        host h(api);
        return init(h, plugin_ctx);
    } catch (const std::exception& e) {
        api->set_error(api->host, to_aq(e.what()));
    } catch (...) {
        api->set_error(api->host, to_aq("unknown exception during init"));
    }
    return AQ_ERR_INTERNAL;
}

}  // namespace detail

inline void host::route(std::string_view method, std::string_view pattern, body_limit limit, handler fn,
                        std::uint32_t flags) {
    // Deliberately leaked: routes live as long as the process, like the plugin itself.
    auto* binding = new detail::route_binding{api_, std::move(fn), std::move(limit)};
    aq_route r{};
    r.struct_size = sizeof r;
    r.method = to_aq(method);
    r.pattern = to_aq(pattern);
    r.max_body_bytes = binding->limit.max_bytes;
    r.flags = flags;
    r.handler = &detail::handler_trampoline;
    r.ctx = binding;
    r.body_limit_status = binding->limit.status;
    r.body_limit_message = to_aq(binding->limit.message);
    r.body_limit_param = to_aq(binding->limit.param);
    if (aq_status st = api_->register_route(api_->host, &r); st != AQ_OK) {
        delete binding;
        throw std::runtime_error("route " + std::string(method) + " " + std::string(pattern) +
                                 " refused by host (status " + std::to_string(st) + ")");
    }
}

inline void request::respond_source(int status, std::span<const aq_header> headers, std::int64_t content_length,
                                    std::unique_ptr<body_source> source) {
    if (!AQ_HAS_FIELD(api_, aq_host_api, respond_source))
        throw std::runtime_error("the host does not support respond_source (ABI 1.1)");
    auto* binding = new detail::source_binding{api_, std::move(source)};
    aq_body_source src{};
    src.struct_size = sizeof src;
    src.ctx = binding;
    src.read = &detail::source_binding::read;
    src.release = &detail::source_binding::release;
    // The host releases the binding whatever it answers.
    check(api_->respond_source(req_, status, headers.data(), headers.size(), content_length, &src));
    answered_ = true;
}

inline void request::respond_file(int status, std::span<const aq_header> headers, int fd, std::uint64_t offset,
                                  std::uint64_t length) {
    if (!AQ_HAS_FIELD(api_, aq_host_api, respond_file))
        throw std::runtime_error("the host does not support respond_file (ABI 1.1)");
    check(api_->respond_file(req_, status, headers.data(), headers.size(), fd, offset, length));
    answered_ = true;
}

inline void host::readiness(std::function<bool()> check) {
    if (!AQ_HAS_FIELD(api_, aq_host_api, register_readiness)) return;
    // Deliberately leaked, like routes: the host may call it until the process exits.
    auto* binding = new detail::readiness_binding{api_, std::move(check)};
    if (aq_status st = api_->register_readiness(api_->host, &detail::readiness_binding::call, binding); st != AQ_OK) {
        delete binding;
        throw std::runtime_error("readiness check refused by host (status " + std::to_string(st) + ")");
    }
}

inline void host::job(std::string_view name, std::uint32_t interval_ms, std::uint32_t jitter_ms,
                      std::function<void()> fn) {
    auto* binding = new detail::job_binding{api_, std::string(name), std::move(fn)};
    aq_job j{};
    j.struct_size = sizeof j;
    j.name = to_aq(binding->name);
    j.interval_ms = interval_ms;
    j.jitter_ms = jitter_ms;
    j.run = &detail::job_trampoline;
    j.ctx = binding;
    if (aq_status st = api_->register_job(api_->host, &j); st != AQ_OK) {
        delete binding;
        throw std::runtime_error("job " + std::string(name) + " refused by host (status " + std::to_string(st) + ")");
    }
}

}  // namespace aq

// Defines the plugin's single exported symbol. INIT is `aq_status(aq::host&, void** ctx)`;
// SHUTDOWN is `void(void* ctx)` or nullptr. Exceptions escaping INIT fail the init with their
// message; SHUTDOWN must not throw (it is called through a noexcept wrapper).
#define AQ_DEFINE_PLUGIN(NAME, VERSION, INIT, SHUTDOWN)                                          \
    namespace {                                                                                  \
    aq_status aq_init_entry(const aq_host_api* api, void** ctx) noexcept {                       \
        return ::aq::detail::init_trampoline(api, ctx, INIT);                                    \
    }                                                                                            \
    void aq_shutdown_entry(void* ctx) noexcept {                                                 \
        void (*fn)(void*) = SHUTDOWN;                                                            \
        if (fn) {                                                                                \
            try {                                                                                \
                fn(ctx);                                                                         \
            } catch (...) {                                                                      \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    constexpr aq_plugin aq_descriptor = {sizeof(aq_plugin), AQ_ABI_MAJOR, AQ_ABI_MINOR,          \
                                         {NAME, sizeof(NAME) - 1}, {VERSION, sizeof(VERSION) - 1}, \
                                         &aq_init_entry, &aq_shutdown_entry};                    \
    }                                                                                            \
    extern "C" AQ_EXPORT const aq_plugin* aq_plugin_entry_v1(void) { return &aq_descriptor; }
