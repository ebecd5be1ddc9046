#include "host_metrics.hpp"

#include <array>
#include <charconv>

namespace aqd {

namespace {

using metrics::kind;

metrics::counter_series& single_counter(metrics::registry& r, std::string_view name, std::string_view help) {
    return r.add(kind::counter, name, help).counter({});
}

}  // namespace

host_metrics::host_metrics(metrics::registry& r)
    : registry(r),
      requests(r.add(kind::counter, "aqueduct_http_requests_total",
                     "HTTP requests answered, by route pattern (\"unmatched\" when none), method and status "
                     "(499: the connection ended before a response began).",
                     {"route", "method", "status"})),
      request_duration(r.add(kind::histogram, "aqueduct_http_request_duration_seconds",
                             "Time from a request's first byte to the end of its response, by route pattern and method.",
                             {"route", "method"}, metrics::duration_buckets())),
      received_bytes(single_counter(r, "aqueduct_http_received_bytes_total",
                                    "Bytes of requests received (head and body as sent), counted when each request ends.")),
      sent_bytes(single_counter(r, "aqueduct_http_sent_bytes_total",
                                "Bytes of responses sent (head and body), counted when each request ends.")),
      refused_connections(r.add(kind::counter, "aqueduct_http_connections_refused_total",
                                "Connections refused at accept: max_connections, max_connections_per_ip, or "
                                "no_descriptors (accept failed for lack of descriptors or memory).",
                                {"reason"})),
      refused_requests(r.add(kind::counter, "aqueduct_http_requests_refused_total",
                             "Requests refused before their handler ran: principal_limit (429), queue_full and "
                             "spool_full (503).",
                             {"reason"})),
      job_runs(r.add(kind::counter, "aqueduct_job_runs_total", "Runs of scheduled jobs, by plugin and job.",
                     {"plugin", "job"})),
      job_duration(r.add(kind::histogram, "aqueduct_job_duration_seconds", "Duration of scheduled job runs.",
                         {"plugin", "job"}, metrics::duration_buckets())),
      reloads(r.add(kind::counter, "aqueduct_config_reloads_total",
                    "Config reloads on SIGHUP, by result (ok, or refused: the running config stayed).", {"result"})) {
    // Every reason is exported from the start, so a rate over a refusal that never happened is 0
    // rather than absent.
    for (std::string_view reason : {"max_connections", "max_connections_per_ip", "no_descriptors"})
        refused_connections.counter({reason});
    for (std::string_view reason : {"principal_limit", "queue_full", "spool_full"}) refused_requests.counter({reason});
    for (std::string_view result : {"ok", "refused"}) reloads.counter({result});
}

void host_metrics::request_finished(std::string_view route, std::string_view method, int status,
                                    std::uint64_t bytes_in, std::uint64_t bytes_out,
                                    std::chrono::steady_clock::duration duration) {
    const std::string_view r = route.empty() ? std::string_view("unmatched") : route;
    const std::string_view m = method_label(method);
    char code[8];
    const auto end = std::to_chars(code, code + sizeof code, status).ptr;
    requests.counter({r, m, std::string_view(code, static_cast<std::size_t>(end - code))}).add(1);
    request_duration.histogram({r, m}).observe(std::chrono::duration<double>(duration).count());
    received_bytes.add(bytes_in);
    sent_bytes.add(bytes_out);
}

std::string_view method_label(std::string_view method) noexcept {
    static constexpr std::array<std::string_view, 9> known = {"GET",     "HEAD",  "POST",    "PUT",  "DELETE",
                                                               "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (std::string_view k : known)
        if (method == k) return k;
    return method.empty() ? "unknown" : "other";
}

}  // namespace aqd
