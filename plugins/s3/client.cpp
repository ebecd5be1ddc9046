#include "client.hpp"

#include "sigv4.hpp"
#include "transport.hpp"
#include "xml.hpp"

#include <aqueduct/plugin.hpp>  // percent_decode, hex_value

#include <openssl/evp.h>

#include <atomic>
#include <charconv>
#include <thread>

namespace aq::s3 {

namespace {

constexpr std::size_t max_xml_bytes = 16 << 20;           // a listing of 1000 long keys is < 2 MiB
constexpr std::size_t expect_continue_from = 1 << 20;     // smaller in-memory bodies go at once
constexpr std::size_t min_part_size = 5 << 20;
constexpr std::uint64_t max_part_size = 5ull << 30;
const std::string empty_payload_hash = sha256_hex("");

bool dns_bucket_name(std::string_view b) {
    if (b.size() < 3 || b.size() > 63) return false;
    for (char c : b)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    return alnum(b.front()) && alnum(b.back()) && b.find("..") == std::string_view::npos;
}

void check_key(std::string_view key) {
    if (key.empty()) throw std::invalid_argument("an S3 object key cannot be empty");
    if (key.size() > 1024) throw std::invalid_argument("an S3 object key is at most 1024 bytes");
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Adds an optional query parameter.
void add_param(query_list& q, std::string_view name, std::string_view value) {
    if (!value.empty()) q.emplace_back(std::string(name), std::string(value));
}

// A key (or key marker) of a listing asked with encoding-type=url: percent-encoded (AWS writes a
// space as '+'), so keys that XML 1.0 cannot carry (control characters) still list.
std::string listed_key(const xml_element& doc, const xml_element& e, std::string_view name) {
    return doc.child_text("EncodingType") == "url" ? percent_decode(e.child_text(name)) : e.child_text(name);
}

}  // namespace

void validate(const client_config& cfg) {
    endpoint ep;
    try {
        ep = parse_endpoint(cfg.endpoint);
        bucket_endpoint(ep, cfg.style, cfg.bucket);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("endpoint: " + std::string(e.what()));
    }
    if (!dns_bucket_name(cfg.bucket))
        throw std::invalid_argument("bucket: " + quoted(cfg.bucket) +
                                    " is not a valid bucket name (3-63 of a-z 0-9 . -, starting and ending "
                                    "with a letter or digit)");
    if (cfg.region.empty()) throw std::invalid_argument("region: must not be empty");
    if (cfg.access_key.empty()) throw std::invalid_argument("access_key: must not be empty");
    if (cfg.secret_key.empty()) throw std::invalid_argument("secret_key: must not be empty");
    if (cfg.part_size < min_part_size || cfg.part_size > max_part_size)
        throw std::invalid_argument("part_size: must be between 5 MiB and 5 GiB");
    if (cfg.parts_in_flight > 16) throw std::invalid_argument("parts_in_flight: at most 16");
    if (cfg.retry.max_attempts < 1) throw std::invalid_argument("retry.max_attempts: must be at least 1");
    if (cfg.retry.base_delay.count() < 0 || cfg.retry.max_delay < cfg.retry.base_delay)
        throw std::invalid_argument("retry delays: need 0 <= base_delay <= max_delay");
    if (cfg.io_timeout.count() <= 0 || cfg.connect_timeout.count() <= 0)
        throw std::invalid_argument("timeouts: must be positive");
}

std::string multipart_etag(const std::vector<completed_part>& parts) {
    std::string md5s;
    for (const auto& p : parts) {
        std::string_view e = p.etag;
        if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
        if (e.size() != 32) return {};
        for (std::size_t i = 0; i < 32; i += 2) {
            int hi = hex_value(e[i]), lo = hex_value(e[i + 1]);
            if (hi < 0 || lo < 0) return {};
            md5s.push_back(static_cast<char>(hi * 16 + lo));
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(md5s.data(), md5s.size(), md, &len, EVP_md5(), nullptr) != 1) return {};
    return quoted(to_hex(std::string_view(reinterpret_cast<const char*>(md), len)) + "-" +
                  std::to_string(parts.size()));
}

struct client::impl {
    client_config cfg;
    endpoint base;     // the endpoint as configured
    endpoint target;   // where requests go (bucket.host for virtual-host addressing)
    credentials creds;
    transport net;
    std::atomic<std::uint64_t> requests{0}, retries{0}, reconnects{0};

    explicit impl(client_config c)
        : cfg((validate(c), std::move(c))),
          base(parse_endpoint(cfg.endpoint)),
          target(bucket_endpoint(base, cfg.style, cfg.bucket)),
          creds{cfg.access_key, cfg.secret_key, cfg.session_token},
          net(transport_config{target, cfg.ca_file, cfg.connect_timeout, cfg.io_timeout, cfg.idle_keepalive,
                               cfg.max_idle_connections}) {}

    // One S3 request, as the operations describe it.
    struct call {
        call(std::string op, std::string m, std::string p, query_list q = {}, header_list h = {})
            : operation(std::move(op)), method(std::move(m)), path(std::move(p)), query(std::move(q)),
              headers(std::move(h)) {}
        call& with_body(std::string_view d) {
            has_body = true;
            data = d;
            return *this;
        }

        std::string operation;         // for messages: "PUT object \"key\""
        std::string method;
        std::string path;              // raw
        query_list query;
        header_list headers;           // unsigned extras: Range, If-Match, Content-Type
        bool has_body = false;
        std::string_view data;         // the body in memory, or
        const body_source* source = nullptr;
        bool head = false;
        const body_receiver* receiver = nullptr;
    };

    std::string path_of(std::string_view key) const { return object_path(base, cfg.style, cfg.bucket, key); }

    static std::string describe(std::string_view what, std::string_view key) {
        return key.empty() ? std::string(what) : std::string(what) + " " + quoted(key);
    }

    // x-amz-content-sha256: computed once per request, not per attempt.
    std::string payload_hash_of(const call& c) const {
        if (c.source) return std::string(unsigned_payload);  // known only once it was sent
        if (c.data.empty()) return empty_payload_hash;
        bool sign = cfg.signing == payload_signing::always ||
                    (cfg.signing == payload_signing::unless_tls && !target.tls);
        return sign ? sha256_hex(c.data) : std::string(unsigned_payload);
    }

    // One attempt. `pulled` counts the bytes taken from call.source.
    http_response send_once(const call& c, const std::string& payload_hash, std::uint64_t& pulled) {
        std::string date = amz_date(std::chrono::system_clock::now());
        request_to_sign r{c.method, c.path, c.query, {}, payload_hash};
        r.headers = {{"host", target.authority}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", date}};
        if (!creds.session_token.empty()) r.headers.emplace_back("x-amz-security-token", creds.session_token);
        signature_parts sig = sign(r, creds, date, cfg.region, "s3");

        http_request h;
        h.method = c.method;
        h.target = canonical_path(c.path);
        if (!c.query.empty()) h.target += "?" + canonical_query(c.query);
        h.headers = std::move(r.headers);
        h.headers.emplace_back("authorization", std::move(sig.authorization));
        h.headers.emplace_back("user-agent", "aqueduct-s3/1");
        for (const auto& extra : c.headers) h.headers.push_back(extra);
        h.has_body = c.has_body;
        h.head = c.head;
        if (c.source) {
            h.content_length = c.source->length;
            h.chunked = c.source->chunked;
            h.pull = [&](char* buf, std::size_t cap) {
                std::size_t n = c.source->read(buf, cap);
                pulled += n;
                return n;
            };
            h.expect_continue = cfg.expect_continue;
        } else {
            h.content_length = c.data.size();
            h.body = c.data;
            h.expect_continue = cfg.expect_continue && c.data.size() >= expect_continue_from;
        }
        ++requests;
        return net.exchange(h, c.receiver, max_xml_bytes);
    }

    // One attempt, as a success or an error. A reused connection the server had closed before
    // answering is replaced at once, once per operation, without counting as an attempt.
    struct outcome {
        std::optional<http_response> response;
        std::optional<error> failure;
        std::uint64_t pulled = 0;      // bytes read from call.source
    };

    outcome attempt(const call& c, const std::string& payload_hash, bool& reconnect_used) {
        for (;;) {
            outcome o;
            try {
                http_response resp = send_once(c, payload_hash, o.pulled);
                if (resp.status / 100 == 2) {
                    o.response = std::move(resp);
                } else {
                    o.failure = error_from_response(c.operation, resp.status, resp.body,
                                                    resp.header("x-amz-request-id"));
                }
            } catch (const transport_failure& f) {
                const auto& d = f.info();
                bool can_replay = o.pulled == 0 || c.source->restart;
                if (d.reused_connection && !d.answered && !reconnect_used && can_replay) {
                    reconnect_used = true;
                    ++reconnects;
                    if (o.pulled > 0) c.source->restart();
                    continue;
                }
                o.failure = d.malformed ? protocol_error(c.operation, f.what())
                                        : network_error(c.operation, f.what(), !d.certificate_rejected);
            }
            return o;
        }
    }

    // After failed attempt number `n`: waits and returns true when another attempt should follow.
    bool wait_before_retry(const call& c, unsigned n, const error& e) {
        if (!e.retryable() || n >= cfg.retry.max_attempts) return false;
        auto delay = backoff_delay(cfg.retry, n, backoff_random());
        if (cfg.on_retry) cfg.on_retry(c.operation, n, delay, e);
        ++retries;
        std::this_thread::sleep_for(delay);
        return true;
    }

    // The request with retries; returns the successful (2xx) answer or throws the last error.
    http_response perform(const call& c) {
        const std::string payload_hash = payload_hash_of(c);
        bool reconnect_used = false;
        for (unsigned n = 1;; ++n) {
            outcome o = attempt(c, payload_hash, reconnect_used);
            if (o.response) return std::move(*o.response);
            const error& e = *o.failure;
            bool replayable = o.pulled == 0 || c.source->restart;
            if (!replayable && e.retryable() && n < cfg.retry.max_attempts)
                throw error(e.kind(), e.status(), e.code(), e.message(), e.request_id(), e.retryable(),
                            std::string(e.what()) + " (not retried: the body source cannot start over)");
            if (!wait_before_retry(c, n, e)) throw e;
            if (o.pulled > 0) c.source->restart();
        }
    }

    xml_element parse_result(const call& c, const http_response& resp, std::string_view root) {
        xml_element doc;
        try {
            doc = parse_xml(resp.body);
        } catch (const std::exception& e) {
            throw protocol_error(c.operation, std::string("the answer is not XML: ") + e.what());
        }
        if (doc.name != root)
            throw protocol_error(c.operation, "expected a <" + std::string(root) + "> document, got <" + doc.name + ">");
        return doc;
    }

    std::string put(std::string op, std::string path, query_list query, std::string_view data,
                    const body_source* source) {
        call c(std::move(op), "PUT", std::move(path), std::move(query), {{"content-type", "application/octet-stream"}});
        c.with_body(data).source = source;
        http_response resp = perform(c);
        std::string etag = resp.header("etag");
        if (etag.empty()) throw protocol_error(c.operation, "the answer has no ETag");
        return etag;
    }

    get_result get(std::string_view key, const body_sink& sink, std::optional<byte_range> range) {
        check_key(key);
        if (range && range->last && *range->last < range->first)
            throw std::invalid_argument("byte range: last must not be before first");
        call c(describe("GET object", key), "GET", path_of(key));
        get_result out;
        std::uint64_t want_first = range ? range->first : 0;
        std::optional<std::uint64_t> want_length;  // known once the object's size is
        std::uint64_t skip = 0;
        bool have_info = false;

        body_receiver receiver;
        receiver.head = [&](int status, const header_list& headers) {
            auto header = [&](std::string_view name) -> std::string {
                for (const auto& [n, v] : headers)
                    if (n == name) return v;
                return {};
            };
            std::uint64_t resp_first = 0, total = 0;
            if (status == 206) {
                // Content-Range: bytes first-last/total
                std::string cr = header("content-range");
                auto sp = cr.find(' '), dash = cr.find('-'), slash = cr.find('/');
                std::optional<std::uint64_t> f, t;
                if (sp != std::string::npos && dash != std::string::npos && slash != std::string::npos && dash < slash) {
                    f = parse_u64(std::string_view(cr).substr(sp + 1, dash - sp - 1));
                    t = parse_u64(std::string_view(cr).substr(slash + 1));
                }
                if (!f || !t) throw protocol_error(c.operation, "unreadable Content-Range " + quoted(cr));
                resp_first = *f;
                total = *t;
            } else {
                auto len = parse_u64(header("content-length"));
                if (!len) throw protocol_error(c.operation, "the answer has no Content-Length");
                total = *len;
            }
            if (!have_info) {
                have_info = true;
                out.object.size = total;
                out.object.etag = header("etag");
                out.object.last_modified = header("last-modified");
                out.object.content_type = header("content-type");
                out.first = want_first;
                std::uint64_t end = total;  // exclusive
                if (range && range->last) end = std::min(end, *range->last + 1);
                want_length = end > want_first ? end - want_first : 0;
            } else if (total != out.object.size) {
                throw error(error_kind::precondition, 0, "PreconditionFailed", "object size changed", {}, false,
                            "S3 " + c.operation + ": the object changed while it was read");
            }
            std::uint64_t next = want_first + out.length;
            if (resp_first > next) throw protocol_error(c.operation, "the server skipped bytes of the range");
            skip = next - resp_first;
        };
        receiver.piece = [&](std::string_view piece) {
            if (skip > 0) {
                std::size_t drop = static_cast<std::size_t>(std::min<std::uint64_t>(skip, piece.size()));
                piece.remove_prefix(drop);
                skip -= drop;
            }
            std::uint64_t room = *want_length - out.length;
            if (piece.size() > room) piece = piece.substr(0, static_cast<std::size_t>(room));
            if (piece.empty()) return;
            out.length += piece.size();
            sink(piece);
        };
        c.receiver = &receiver;

        bool reconnect_used = false;
        for (unsigned n = 1;; ++n) {
            c.headers.clear();
            std::uint64_t next = want_first + out.length;
            if (range || out.length > 0) {
                std::string r = "bytes=" + std::to_string(next) + "-";
                if (range && range->last) r += std::to_string(*range->last);
                c.headers.emplace_back("range", r);
            }
            // A resumed download must read the same object version it started with.
            if (out.length > 0 && !out.object.etag.empty()) c.headers.emplace_back("if-match", out.object.etag);
            outcome o = attempt(c, empty_payload_hash, reconnect_used);
            if (o.response) {
                if (want_length && out.length != *want_length)
                    throw protocol_error(c.operation, "the body ended after " + std::to_string(out.length) + " of " +
                                                          std::to_string(*want_length) + " bytes");
                return out;
            }
            if (!wait_before_retry(c, n, *o.failure)) throw *o.failure;
        }
    }

    std::string complete(std::string_view key, std::string_view upload_id, const std::vector<completed_part>& parts) {
        check_key(key);
        if (parts.empty()) throw std::invalid_argument("a multipart upload needs at least one part");
        std::string body = "<CompleteMultipartUpload>";
        for (const auto& p : parts)
            body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>" + xml_escape(p.etag) +
                    "</ETag></Part>";
        body += "</CompleteMultipartUpload>";
        call c(describe("complete multipart upload of", key), "POST", path_of(key), {{"uploadId", std::string(upload_id)}},
               {{"content-type", "application/xml"}});
        c.with_body(body);
        const std::string payload_hash = payload_hash_of(c);
        bool reconnect_used = false;
        bool may_have_completed = false;  // an earlier attempt reached the server and its answer was lost
        for (unsigned n = 1;; ++n) {
            outcome o = attempt(c, payload_hash, reconnect_used);
            if (o.response) {
                // S3 answers 200 at once and may report a failure in the body, after whitespace
                // it sends to keep the connection open while it assembles the parts.
                xml_element doc;
                try {
                    doc = parse_xml(o.response->body);
                } catch (const std::exception& e) {
                    throw protocol_error(c.operation, std::string("the answer is not XML: ") + e.what());
                }
                if (doc.name == "CompleteMultipartUploadResult") {
                    std::string etag = doc.child_text("ETag");
                    return etag.empty() ? multipart_etag(parts) : etag;
                }
                o.failure = error_from_response(c.operation, 200, o.response->body,
                                                o.response->header("x-amz-request-id"));
            } else if (may_have_completed && o.failure->code() == "NoSuchUpload") {
                std::string expected = multipart_etag(parts);
                object_info info = head(key);
                if (!expected.empty() && info.etag == expected) return info.etag;
                throw *o.failure;
            }
            may_have_completed = may_have_completed || o.failure->kind() == error_kind::network ||
                                 o.failure->kind() == error_kind::server;
            if (!wait_before_retry(c, n, *o.failure)) throw *o.failure;
        }
    }

    object_info head(std::string_view key) {
        check_key(key);
        call c(describe("HEAD object", key), "HEAD", path_of(key));
        c.head = true;
        http_response resp = perform(c);
        object_info info;
        auto size = parse_u64(resp.header("content-length"));
        if (!size) throw protocol_error(c.operation, "the answer has no Content-Length");
        info.size = *size;
        info.etag = resp.header("etag");
        info.last_modified = resp.header("last-modified");
        info.content_type = resp.header("content-type");
        return info;
    }
};

client::client(client_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}
client::~client() = default;

const client_config& client::config() const noexcept { return impl_->cfg; }

void client::create_bucket() {
    auto& I = *impl_;
    std::string body;
    // us-east-1 is the default location, and naming it is refused there.
    if (I.cfg.region != "us-east-1")
        body = "<CreateBucketConfiguration><LocationConstraint>" + xml_escape(I.cfg.region) +
               "</LocationConstraint></CreateBucketConfiguration>";
    impl::call c("create bucket " + quoted(I.cfg.bucket), "PUT", I.path_of({}));
    c.with_body(body);
    try {
        I.perform(c);
    } catch (const error& e) {
        if (e.code() != "BucketAlreadyOwnedByYou") throw;
    }
}

std::string client::put_object(std::string_view key, std::string_view data) {
    check_key(key);
    return impl_->put(impl::describe("PUT object", key), impl_->path_of(key), {}, data, nullptr);
}

std::string client::put_object(std::string_view key, const body_source& source) {
    check_key(key);
    if (!source.read) throw std::invalid_argument("body_source: read is not set");
    return impl_->put(impl::describe("PUT object", key), impl_->path_of(key), {}, {}, &source);
}

bool client::takes_chunked_puts(std::string_view probe_key) {
    check_key(probe_key);
    static constexpr std::string_view probe = "aqueduct: a PUT with Transfer-Encoding: chunked\n";
    std::size_t at = 0;
    body_source source;
    source.chunked = true;
    source.read = [&](char* buf, std::size_t cap) {
        // Two chunks, so the server sees the framing at work, not one piece.
        std::size_t n = std::min({cap, probe.size() - at, at == 0 ? probe.size() / 2 : probe.size()});
        std::copy_n(probe.data() + at, n, buf);
        at += n;
        return n;
    };
    source.restart = [&] { at = 0; };
    try {
        put_object(probe_key, source);
    } catch (const error& e) {
        // 501 NotImplemented (AWS names Transfer-Encoding), 411 MissingContentLength, 400: the
        // server does not take it. Access and the network are not the probe's to judge.
        if (e.kind() == error_kind::rejected) return false;
        throw;
    }
    std::uint64_t stored = head_object(probe_key).size;
    delete_object(probe_key);
    return stored == probe.size();
}

object_info client::head_object(std::string_view key) { return impl_->head(key); }

get_result client::get_object(std::string_view key, const body_sink& sink, std::optional<byte_range> range) {
    return impl_->get(key, sink, range);
}

void client::delete_object(std::string_view key) {
    check_key(key);
    impl::call c(impl::describe("DELETE object", key), "DELETE", impl_->path_of(key));
    try {
        impl_->perform(c);
    } catch (const error& e) {
        if (e.code() != "NoSuchKey") throw;  // S3 answers 204 for an absent key; some servers 404
    }
}

object_page client::list_objects(std::string_view prefix, std::string_view continuation_token, unsigned max_keys) {
    if (max_keys < 1 || max_keys > 1000) throw std::invalid_argument("max_keys: 1 to 1000");
    impl::call c("list objects with prefix " + quoted(prefix), "GET", impl_->path_of({}),
                 {{"list-type", "2"}, {"encoding-type", "url"}, {"max-keys", std::to_string(max_keys)}});
    add_param(c.query, "prefix", prefix);
    add_param(c.query, "continuation-token", continuation_token);
    xml_element doc = impl_->parse_result(c, impl_->perform(c), "ListBucketResult");
    object_page page;
    for (const auto& e : doc.children) {
        if (e.name != "Contents") continue;
        listed_object o;
        o.key = listed_key(doc, e, "Key");
        auto size = parse_u64(e.child_text("Size"));
        if (!size) throw protocol_error(c.operation, "a listed object has no size");
        o.size = *size;
        o.etag = e.child_text("ETag");
        o.last_modified = e.child_text("LastModified");
        page.objects.push_back(std::move(o));
    }
    if (doc.child_text("IsTruncated") == "true") {
        page.next_continuation_token = doc.child_text("NextContinuationToken");
        if (page.next_continuation_token.empty())
            throw protocol_error(c.operation, "a truncated listing without NextContinuationToken");
    }
    return page;
}

std::vector<listed_object> client::list_all_objects(std::string_view prefix) {
    std::vector<listed_object> all;
    std::string token;
    do {
        object_page page = list_objects(prefix, token);
        for (auto& o : page.objects) all.push_back(std::move(o));
        token = std::move(page.next_continuation_token);
    } while (!token.empty());
    return all;
}

std::string client::create_multipart_upload(std::string_view key) {
    check_key(key);
    impl::call c(impl::describe("create multipart upload of", key), "POST", impl_->path_of(key), {{"uploads", ""}},
                 {{"content-type", "application/octet-stream"}});
    c.with_body({});
    http_response resp = impl_->perform(c);
    xml_element doc = impl_->parse_result(c, resp, "InitiateMultipartUploadResult");
    std::string id = doc.child_text("UploadId");
    if (id.empty()) throw protocol_error(c.operation, "the answer has no UploadId");
    return id;
}

namespace {
void check_part(int part_number) {
    if (part_number < 1 || part_number > 10000) throw std::invalid_argument("part numbers run from 1 to 10000");
}
}  // namespace

std::string client::upload_part(std::string_view key, std::string_view upload_id, int part_number,
                                std::string_view data) {
    check_key(key);
    check_part(part_number);
    return impl_->put(impl::describe("upload part " + std::to_string(part_number) + " of", key), impl_->path_of(key),
                      {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}}, data, nullptr);
}

std::string client::upload_part(std::string_view key, std::string_view upload_id, int part_number,
                                const body_source& source) {
    check_key(key);
    check_part(part_number);
    if (!source.read) throw std::invalid_argument("body_source: read is not set");
    return impl_->put(impl::describe("upload part " + std::to_string(part_number) + " of", key), impl_->path_of(key),
                      {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}}, {}, &source);
}

std::string client::complete_multipart_upload(std::string_view key, std::string_view upload_id,
                                              const std::vector<completed_part>& parts) {
    return impl_->complete(key, upload_id, parts);
}

void client::abort_multipart_upload(std::string_view key, std::string_view upload_id) {
    check_key(key);
    impl::call c(impl::describe("abort multipart upload of", key), "DELETE", impl_->path_of(key),
                 {{"uploadId", std::string(upload_id)}});
    try {
        impl_->perform(c);
    } catch (const error& e) {
        if (e.code() != "NoSuchUpload") throw;
    }
}

upload_page client::list_multipart_uploads(std::string_view prefix, std::string_view key_marker,
                                           std::string_view upload_id_marker) {
    impl::call c("list multipart uploads with prefix " + quoted(prefix), "GET", impl_->path_of({}),
                 {{"uploads", ""}, {"encoding-type", "url"}});
    add_param(c.query, "prefix", prefix);
    add_param(c.query, "key-marker", key_marker);
    add_param(c.query, "upload-id-marker", upload_id_marker);
    xml_element doc = impl_->parse_result(c, impl_->perform(c), "ListMultipartUploadsResult");
    upload_page page;
    for (const auto& e : doc.children) {
        if (e.name != "Upload") continue;
        pending_upload u;
        u.key = listed_key(doc, e, "Key");
        u.upload_id = e.child_text("UploadId");
        u.initiated = e.child_text("Initiated");
        page.uploads.push_back(std::move(u));
    }
    if (doc.child_text("IsTruncated") == "true") {
        page.next_key_marker = listed_key(doc, doc, "NextKeyMarker");
        page.next_upload_id_marker = doc.child_text("NextUploadIdMarker");
    }
    return page;
}

client_stats client::stats() const noexcept {
    return {impl_->requests.load(), impl_->retries.load(), impl_->reconnects.load(), impl_->net.connections_opened()};
}

}  // namespace aq::s3
