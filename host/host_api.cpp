#include "host_api.hpp"

#include "ascii.hpp"
#include "exchange.hpp"
#include "host_metrics.hpp"
#include "log.hpp"
#include "readiness.hpp"
#include "response_rules.hpp"
#include "router.hpp"
#include "scheduler.hpp"
#include "service_registry.hpp"

#include <aqueduct/plugin.hpp>

#include <cstring>
#include <limits>
#include <optional>

#include <sys/stat.h>

namespace aqd {

namespace {

// Every function here is called by plugin code through a C pointer: none may let an exception
// out, so each catches at its edge and answers with a status.

exchange& X(aq_request* req) { return *static_cast<exchange*>(req); }

std::string_view sv(aq_str s) { return aq::to_sv(s); }


header_list copy_headers(const aq_header* headers, std::size_t count) {
    header_list out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.emplace_back(std::string(sv(headers[i].name)), std::string(sv(headers[i].value)));
    return out;
}

// A status code a plugin sends must be one HTTP can carry.
bool valid_status(int status) { return status >= 200 && status <= 599; }

// The rules of abi.h for a response about to begin; a violation is logged and answered 500 by
// the exchange, and the plugin hears AQ_ERR_INVALID.
bool acceptable(exchange& ex, int status, const aq_header* headers, std::size_t count, std::int64_t length) {
    std::optional<std::string> problem = check_status(status);
    if (!problem) problem = check_headers(headers, count);
    if (!problem) problem = check_body(status, length);
    if (!problem) return true;
    ex.refuse(*problem);
    return false;
}

void host_log(aq_host* h, aq_log_level level, aq_str message) {
    try {
        log::write(level, h->plugin, sv(message));
    } catch (...) {
    }
}

aq_str host_config_json(aq_host* h) { return aq::to_aq(h->config_json); }

void host_set_error(aq_host* h, aq_str message) {
    try {
        h->error.assign(sv(message));
    } catch (...) {
    }
}

bool host_stopping(aq_host* h) { return h->context->stopping.load(); }

aq_status host_register_route(aq_host* h, const aq_route* route) {
    if (!h->registering) return AQ_ERR_STATE;
    if (!AQ_HAS_FIELD(route, aq_route, ctx) || !route->handler) return AQ_ERR_INVALID;
    try {
        route_target target;
        target.handler = route->handler;
        target.ctx = route->ctx;
        target.max_body_bytes = route->max_body_bytes;
        target.flags = route->flags;
        target.plugin = h->plugin;
        if (AQ_HAS_FIELD(route, aq_route, body_limit_param)) {
            if (route->body_limit_status != 0 && !valid_status(route->body_limit_status)) return AQ_ERR_INVALID;
            target.limit_status = route->body_limit_status;
            target.limit_message.assign(sv(route->body_limit_message));
            target.limit_param.assign(sv(route->body_limit_param));
        }
        h->context->routes.add(sv(route->method), sv(route->pattern), std::move(target));
        return AQ_OK;
    } catch (const route_error& e) {
        h->error = e.what();
        log::error(h->plugin, e.what());
        return e.kind == route_error::duplicate ? AQ_ERR_EXISTS : AQ_ERR_INVALID;
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status host_register_job(aq_host* h, const aq_job* job) {
    if (!h->registering) return AQ_ERR_STATE;
    if (!AQ_HAS_FIELD(job, aq_job, ctx) || !job->run || job->interval_ms == 0) return AQ_ERR_INVALID;
    try {
        auto run = job->run;
        void* ctx = job->ctx;
        // The job's series are looked up once; each run then costs two atomic updates.
        host_metrics& m = h->context->metrics;
        const std::string name(sv(job->name));
        metrics::counter_series* runs = &m.job_runs.counter({h->plugin, name});
        metrics::histogram_series* took = &m.job_duration.histogram({h->plugin, name});
        h->context->jobs.add(h->plugin + "." + name, std::chrono::milliseconds(job->interval_ms),
                             std::chrono::milliseconds(job->jitter_ms), [run, ctx, runs, took] {
                                 const auto started = std::chrono::steady_clock::now();
                                 run(ctx);
                                 runs->add(1);
                                 took->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
                             });
        return AQ_OK;
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status host_register_service(aq_host* h, aq_str name, uint32_t version, const void* table) {
    if (!h->registering) return AQ_ERR_STATE;
    if (!table || name.len == 0) return AQ_ERR_INVALID;
    try {
        return h->context->services.add(sv(name), version, table, h->plugin) ? AQ_OK : AQ_ERR_EXISTS;
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

const void* host_get_service(aq_host* h, aq_str name, uint32_t version) {
    try {
        return h->context->services.find(sv(name), version);
    } catch (...) {
        return nullptr;
    }
}

aq_str req_method(aq_request* r) { return aq::to_aq(X(r).head().method); }
aq_str req_path(aq_request* r) { return aq::to_aq(X(r).head().path); }
aq_str req_query(aq_request* r) { return aq::to_aq(X(r).head().query); }
aq_str req_id(aq_request* r) { return aq::to_aq(X(r).head().request_id); }
int64_t req_content_length(aq_request* r) { return X(r).head().content_length; }
const aq_principal* req_principal(aq_request* r) { return X(r).abi_principal(); }

bool req_param(aq_request* r, aq_str name, aq_str* value) {
    for (auto& [k, v] : X(r).head().params)
        if (k == sv(name)) {
            *value = aq::to_aq(v);
            return true;
        }
    return false;
}

bool req_header(aq_request* r, aq_str name, aq_str* value) {
    for (auto& [k, v] : X(r).head().headers)
        if (iequals(k, sv(name))) {
            *value = aq::to_aq(v);
            return true;
        }
    return false;
}

int64_t req_read_body(aq_request* r, void* buf, size_t cap) {
    try {
        return X(r).read_body(buf, cap);
    } catch (...) {
        return -static_cast<int64_t>(AQ_ERR_INTERNAL);
    }
}

aq_status req_respond(aq_request* r, int status, const aq_header* headers, size_t count, aq_str body) {
    try {
        if (!acceptable(X(r), status, headers, count, static_cast<std::int64_t>(body.len))) return AQ_ERR_INVALID;
        return X(r).respond(status, copy_headers(headers, count), std::string(sv(body)));
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_begin(aq_request* r, int status, const aq_header* headers, size_t count, int64_t content_length) {
    try {
        if (content_length < -1) {
            X(r).refuse("begin_response with content_length " + std::to_string(content_length));
            return AQ_ERR_INVALID;
        }
        if (!acceptable(X(r), status, headers, count, content_length)) return AQ_ERR_INVALID;
        return X(r).begin(status, copy_headers(headers, count), content_length);
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_write(aq_request* r, aq_str chunk) {
    try {
        if (chunk.len && !chunk.data) return AQ_ERR_INVALID;
        return X(r).write(sv(chunk));
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_end(aq_request* r) {
    try {
        return X(r).end();
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_respond_source(aq_request* r, int status, const aq_header* headers, size_t count,
                             int64_t content_length, const aq_body_source* source) {
    if (!AQ_HAS_FIELD(source, aq_body_source, release)) {
        // Without a complete struct there is nothing the host could safely call, not even release.
        try {
            X(r).refuse("respond_source without a complete aq_body_source");
        } catch (...) {
        }
        return AQ_ERR_INVALID;
    }
    const aq_body_source src = *source;  // the fields this host knows; a newer plugin's struct may be longer
    bool handed = false;  // once the exchange has it, the exchange releases it
    auto give_back = [&] {
        if (!handed && src.release) src.release(src.ctx);
    };
    try {
        if (!src.read) {
            X(r).refuse("respond_source without a read function");
            give_back();
            return AQ_ERR_INVALID;
        }
        if (content_length < -1) {
            X(r).refuse("respond_source with content_length " + std::to_string(content_length));
            give_back();
            return AQ_ERR_INVALID;
        }
        if (!acceptable(X(r), status, headers, count, content_length)) {
            give_back();
            return AQ_ERR_INVALID;
        }
        header_list copied = copy_headers(headers, count);
        handed = true;
        return X(r).respond_source(status, std::move(copied), content_length, src);
    } catch (...) {
        give_back();
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_respond_file(aq_request* r, int status, const aq_header* headers, size_t count, int fd,
                           uint64_t offset, uint64_t length) {
    unique_fd owned(fd);  // the host owns it from here on, whatever the result
    try {
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || offset > static_cast<uint64_t>(st.st_size) ||
            length > static_cast<uint64_t>(st.st_size) - offset) {
            X(r).refuse("respond_file with a descriptor that is not a regular file holding offset + length bytes");
            return AQ_ERR_INVALID;
        }
        if (length > static_cast<uint64_t>(std::numeric_limits<std::int64_t>::max())) return AQ_ERR_INVALID;
        if (!acceptable(X(r), status, headers, count, static_cast<std::int64_t>(length))) return AQ_ERR_INVALID;
        return X(r).respond_file(status, copy_headers(headers, count), std::move(owned), offset, length);
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

// ---- ABI 1.2: metrics and readiness ------------------------------------------------------------

aq_status host_register_metric(aq_host* h, const aq_metric_def* def, aq_metric** out) {
    if (!h->registering) return AQ_ERR_STATE;
    if (!AQ_HAS_FIELD(def, aq_metric_def, bucket_count) || !out || def->kind > AQ_METRIC_HISTOGRAM ||
        (def->label_count && !def->label_names) || (def->bucket_count && !def->buckets))
        return AQ_ERR_INVALID;
    try {
        std::vector<std::string> labels;
        for (std::size_t i = 0; i < def->label_count; ++i) labels.emplace_back(sv(def->label_names[i]));
        std::vector<double> buckets(def->buckets, def->buckets + def->bucket_count);
        const auto k = static_cast<metrics::kind>(def->kind);
        *out = &h->context->metrics.registry.add(k, sv(def->name), sv(def->help), std::move(labels), std::move(buckets));
        return AQ_OK;
    } catch (const metrics::metric_error& e) {
        h->error = e.what();
        log::error(h->plugin, e.what());
        return e.reason == metrics::metric_error::exists ? AQ_ERR_EXISTS : AQ_ERR_INVALID;
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_metric_series* host_metric_series(aq_metric* m, const aq_str* values, size_t count) {
    if (!m || (count && !values)) return nullptr;
    try {
        std::vector<std::string_view> v;
        v.reserve(count);
        for (std::size_t i = 0; i < count; ++i) v.push_back(sv(values[i]));
        return static_cast<metrics::family*>(m)->at(v);
    } catch (...) {
        return nullptr;
    }
}

// The kind is checked on every update: a plugin that mixes up its handles is ignored, not UB.
template <class Series, metrics::kind K>
Series* as(aq_metric_series* s) noexcept {
    auto* base = static_cast<metrics::series*>(s);
    return base && base->type() == K ? static_cast<Series*>(base) : nullptr;
}

void host_counter_add(aq_metric_series* s, uint64_t n) {
    if (auto* c = as<metrics::counter_series, metrics::kind::counter>(s)) c->add(n);
}
void host_gauge_set(aq_metric_series* s, int64_t v) {
    if (auto* g = as<metrics::gauge_series, metrics::kind::gauge>(s)) g->set(v);
}
void host_gauge_add(aq_metric_series* s, int64_t d) {
    if (auto* g = as<metrics::gauge_series, metrics::kind::gauge>(s)) g->add(d);
}
void host_histogram_observe(aq_metric_series* s, double v) {
    if (auto* hs = as<metrics::histogram_series, metrics::kind::histogram>(s)) hs->observe(v);
}

aq_status host_register_readiness(aq_host* h, aq_readiness_fn fn, void* ctx) {
    if (!h->registering) return AQ_ERR_STATE;
    if (!fn) return AQ_ERR_INVALID;
    try {
        return h->context->checks.add(h->plugin, fn, ctx) ? AQ_OK : AQ_ERR_EXISTS;
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

}  // namespace

void bind_host_api(aq_host& host) {
    aq_host_api& a = host.api;
    a = aq_host_api{};
    a.struct_size = sizeof(aq_host_api);
    a.abi_major = AQ_ABI_MAJOR;
    a.abi_minor = AQ_ABI_MINOR;
    a.host = &host;
    a.log = &host_log;
    a.config_json = &host_config_json;
    a.set_error = &host_set_error;
    a.stopping = &host_stopping;
    a.register_route = &host_register_route;
    a.register_job = &host_register_job;
    a.register_service = &host_register_service;
    a.get_service = &host_get_service;
    a.request_method = &req_method;
    a.request_path = &req_path;
    a.request_param = &req_param;
    a.request_query = &req_query;
    a.request_header = &req_header;
    a.request_principal = &req_principal;
    a.request_id = &req_id;
    a.request_content_length = &req_content_length;
    a.read_body = &req_read_body;
    a.respond = &req_respond;
    a.begin_response = &req_begin;
    a.write_response = &req_write;
    a.end_response = &req_end;
    a.respond_source = &req_respond_source;
    a.respond_file = &req_respond_file;
    a.register_metric = &host_register_metric;
    a.metric_series = &host_metric_series;
    a.counter_add = &host_counter_add;
    a.gauge_set = &host_gauge_set;
    a.gauge_add = &host_gauge_add;
    a.histogram_observe = &host_histogram_observe;
    a.register_readiness = &host_register_readiness;
}

}  // namespace aqd
