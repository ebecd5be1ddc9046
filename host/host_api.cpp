#include "host_api.hpp"

#include "ascii.hpp"
#include "exchange.hpp"
#include "log.hpp"
#include "router.hpp"
#include "scheduler.hpp"
#include "service_registry.hpp"

#include <aqueduct/plugin.hpp>

#include <cstring>

namespace aqd {

namespace {

// Every function here is called by plugin code through a C pointer: none may let an exception
// out, so each catches at its edge and answers with a status.

exchange& X(aq_request* req) { return *static_cast<exchange*>(req); }

std::string_view sv(aq_str s) { return aq::to_sv(s); }


exchange::header_list copy_headers(const aq_header* headers, std::size_t count) {
    exchange::header_list out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.emplace_back(std::string(sv(headers[i].name)), std::string(sv(headers[i].value)));
    return out;
}

// A status code a plugin sends must be one HTTP can carry.
bool valid_status(int status) { return status >= 200 && status <= 599; }

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
        h->context->jobs.add(h->plugin + "." + std::string(sv(job->name)), std::chrono::milliseconds(job->interval_ms),
                             std::chrono::milliseconds(job->jitter_ms), [run, ctx] { run(ctx); });
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
    if (!valid_status(status)) return AQ_ERR_INVALID;
    try {
        return X(r).respond(status, copy_headers(headers, count), std::string(sv(body)));
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_begin(aq_request* r, int status, const aq_header* headers, size_t count, int64_t content_length) {
    if (!valid_status(status) || content_length < -1) return AQ_ERR_INVALID;
    try {
        return X(r).begin(status, copy_headers(headers, count), content_length);
    } catch (...) {
        return AQ_ERR_INTERNAL;
    }
}

aq_status req_write(aq_request* r, aq_str chunk) {
    try {
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
}

}  // namespace aqd
