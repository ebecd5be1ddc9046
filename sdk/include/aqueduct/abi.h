/*
 * aqueduct plugin ABI, version 1.
 *
 * The one stable contract between the aqueductd host and a plugin. Pure C, so a plugin can be
 * written in any language and built with any compiler; only <stdint.h>, <stddef.h> and
 * <stdbool.h> are used.
 *
 * Rules (they are what keeps old plugins loading in new hosts):
 *  - A plugin exports exactly one symbol, the function aq_plugin_entry_v1(), which returns a
 *    pointer to a static descriptor. The host refuses the plugin if the symbol is missing, if
 *    abi_major differs from the host's, or if abi_minor is newer than the host's.
 *  - Every struct that crosses the boundary starts with `struct_size` and only ever grows at the
 *    end. A reader checks AQ_HAS_FIELD() before it reads a field added after version 1.0.
 *  - A function's signature never changes; a changed function gets a new name (`..._v2`) in a new
 *    slot at the end of its table.
 *  - Strings are aq_str views {data, len}; they are never relied on to be NUL-terminated.
 *  - Ownership: data the host hands to a callback lives until that callback returns; a plugin
 *    copies what it keeps. Data the plugin hands to the host is copied by the host before the
 *    call returns unless a comment says otherwise. Memory is freed by the side that allocated it.
 *  - No exception, C++ object or foreign allocator crosses the boundary.
 *  - Plugins are never unloaded before the process exits.
 *
 * Threads. These kinds of thread are named in the comments below:
 *  - "main": the thread that loads plugins and calls init and shutdown;
 *  - "handler": a worker-pool thread running a route handler; the request functions may be
 *    called only from the thread running that request's handler, and only until it returns;
 *  - "worker": any thread of the host's worker pool (body sources are read there);
 *  - "job": a thread of the scheduler's own, running a periodic job;
 *  - "any": any thread, including threads the plugin created itself.
 *
 * Versions. 1.0: the first contract. 1.1 appended aq_body_source and two aq_host_api slots,
 * respond_source and respond_file. 1.2 appended metrics (aq_metric_def and the register_metric,
 * metric_series, counter_add, gauge_set, gauge_add and histogram_observe slots) and readiness
 * (register_readiness). A plugin built against an older minor loads unchanged. A plugin that
 * uses a newer slot checks AQ_HAS_FIELD(api, aq_host_api, <slot>) first (a plugin is refused by
 * a host of an older minor, so the check only matters for plugins that declare an older minor).
 */
#ifndef AQUEDUCT_ABI_H
#define AQUEDUCT_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AQ_ABI_MAJOR 1
#define AQ_ABI_MINOR 2

/* The name of the single symbol a plugin exports. */
#define AQ_PLUGIN_ENTRY_SYMBOL "aq_plugin_entry_v1"

#if defined(_WIN32)
#define AQ_EXPORT __declspec(dllexport)
#else
#define AQ_EXPORT __attribute__((visibility("default")))
#endif

/* True when a struct of the given reported size contains FIELD. */
#define AQ_HAS_FIELD(ptr, type, field) \
    ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* A borrowed string: `len` bytes at `data`, not necessarily NUL-terminated. */
typedef struct aq_str {
    const char* data;
    size_t len;
} aq_str;

/* Results of fallible calls. Values are stable; new ones are only appended. */
typedef enum aq_status {
    AQ_OK = 0,
    AQ_ERR_INTERNAL = 1,      /* a bug or an unexpected failure; details were logged */
    AQ_ERR_INVALID = 2,       /* an argument was invalid (details through set_error)  */
    AQ_ERR_NOT_FOUND = 3,     /* no such object                                      */
    AQ_ERR_EXISTS = 4,        /* already registered                                  */
    AQ_ERR_DISCONNECTED = 5,  /* the client went away; stop and roll back            */
    AQ_ERR_TOO_LARGE = 6,     /* the request body exceeded the route's limit         */
    AQ_ERR_STATE = 7,         /* not allowed now (for example: registering after init) */
    AQ_ERR_UNAVAILABLE = 8,   /* storage or a dependency is unavailable              */
    AQ_ERR_LIMIT = 9          /* a configured quota or limit would be exceeded        */
} aq_status;

typedef enum aq_log_level {
    AQ_LOG_DEBUG = 0,
    AQ_LOG_INFO = 1,
    AQ_LOG_WARN = 2,
    AQ_LOG_ERROR = 3
} aq_log_level;

/* Opaque handles. An aq_host is per plugin: it carries the plugin's name (for log lines) and its
 * config section. An aq_request lives from the handler's call until it returns. */
typedef struct aq_host aq_host;
typedef struct aq_request aq_request;

/* Who made a request, as authenticated by the host. `team` has len 0 for a personal token. */
typedef struct aq_principal {
    size_t struct_size;
    aq_str token_name;
    aq_str user;
    aq_str team;
} aq_principal;

typedef struct aq_header {
    aq_str name;
    aq_str value;
} aq_header;

/* A route handler. Runs on a handler thread and may block (database, upstream calls), never on
 * the client: the host has received the whole request body before it calls the handler.
 * It must answer exactly once, with respond(), begin_response()/write/end_response(),
 * respond_source() or respond_file(); a handler that returns without answering gets a 500 from
 * the host. */
typedef void (*aq_handler_fn)(void* ctx, aq_request* req);

/* ABI 1.1. A response body the host pulls (respond_source), so that no thread waits while a
 * client reads slowly: the host asks for the next piece only when the connection has room for
 * it. A client that stops reading costs a socket, the pieces already queued (a few hundred KiB
 * at most) and what the source itself holds; no thread. */
typedef struct aq_body_source {
    size_t struct_size;
    void* ctx; /* owned by the plugin; passed back to read and release */
    /* Copies up to `cap` bytes (at most 256 KiB) of the body into `buf`. Returns the number of
     * bytes (> 0), 0 at the end of the body, or a negated aq_status on failure; the host then
     * aborts the response (the client sees a truncated body, never a wrong one) and logs it.
     * With a declared length, the host stops asking once it has that many bytes, and a source
     * that ends short of it aborts the response too.
     * Thread: worker; only after the handler returned, never two calls at once. */
    int64_t (*read)(void* ctx, void* buf, size_t cap);
    /* Called exactly once when the host no longer needs the source: after the end of the body,
     * a failed read, the client going away or shutdown, and also when respond_source refuses
     * the response. Never while read runs. Thread: any host thread (worker, I/O or main); it
     * must not block for long. May be NULL. */
    void (*release)(void* ctx);
} aq_body_source;

/* Route flags. */
#define AQ_ROUTE_PUBLIC 0x1u /* no Authorization needed (health checks, public metadata) */

typedef struct aq_route {
    size_t struct_size;
    aq_str method;          /* "GET", "POST", "DELETE", ...                                   */
    aq_str pattern;         /* "/files/{file_id}/content": literal segments and {params}.
                               Every route also answers under the "/v1" prefix.               */
    uint64_t max_body_bytes; /* larger bodies are refused with 413 before the handler runs;
                               0 means the route takes no body                                */
    uint32_t flags;         /* AQ_ROUTE_* */
    aq_handler_fn handler;
    void* ctx;              /* passed back to handler; owned by the plugin                    */
    /* How a body over max_body_bytes is refused. The host answers before reading the body when
     * Content-Length says so; a chunked body that grows past the limit makes read_body return
     * -AQ_ERR_TOO_LARGE and the handler answers. 0 / empty: 413 with a generic message. (The
     * Files API, for one, answers an oversize upload with 400 naming the "file" param.) */
    int body_limit_status;
    aq_str body_limit_message;  /* copied by the host */
    aq_str body_limit_param;    /* copied by the host */
} aq_route;

/* A periodic job. The scheduler runs it on a job thread (threads of the scheduler's own: request
 * handlers never delay a job) every interval_ms (plus a random 0..jitter_ms), never two runs of
 * the same job at once, and waits for a running job on shutdown. A long job should poll
 * host->stopping() and return early when it says true. */
typedef void (*aq_job_fn)(void* ctx);

typedef struct aq_job {
    size_t struct_size;
    aq_str name;            /* unique per plugin, for logs */
    uint32_t interval_ms;
    uint32_t jitter_ms;
    aq_job_fn run;
    void* ctx;
} aq_job;

/* ABI 1.2. Metrics a plugin publishes at GET /metrics (Prometheus text format 0.0.4), next to
 * the host's own. A family (aq_metric) has one name, one kind and fixed label names; each
 * combination of label values is a series (aq_metric_series), looked up once and then updated
 * from any thread with one relaxed atomic operation. Both live until the process exits. */
typedef struct aq_metric aq_metric;
typedef struct aq_metric_series aq_metric_series;

typedef enum aq_metric_kind {
    AQ_METRIC_COUNTER = 0,   /* a count that only goes up (uint64); the name ends in _total     */
    AQ_METRIC_GAUGE = 1,     /* a value that goes up and down (int64)                          */
    AQ_METRIC_HISTOGRAM = 2  /* observations (double) counted into fixed buckets, with their sum */
} aq_metric_kind;

typedef struct aq_metric_def {
    size_t struct_size;
    uint32_t kind;            /* aq_metric_kind                                                 */
    /* [a-z_][a-z0-9_]*, at most 128 bytes, unique among the host's and every plugin's metrics
     * (prefix it: aqueduct_<plugin>_...). A counter's name ends in _total, no other kind's does;
     * no name ends in _bucket, _count or _sum (a histogram's series use those). */
    aq_str name;
    aq_str help;              /* the # HELP line: not empty, valid UTF-8, copied               */
    /* [a-z_][a-z0-9_]*, distinct, not starting with "__", not "le" (a histogram's bucket label);
     * at most 8. May be NULL when label_count is 0. */
    const aq_str* label_names;
    size_t label_count;
    /* Histograms: 1 to 64 finite upper bounds, strictly increasing; +Inf is always added. Other
     * kinds: none (NULL, 0). */
    const double* buckets;
    size_t bucket_count;
} aq_metric_def;

/* ABI 1.2. Whether a plugin can serve now (its database answers, for one): GET /readyz answers
 * 200 only while every plugin that registered one says true. Called on a thread of the host's
 * own about every readiness_interval_ms (config), never twice at once; it may block briefly (a
 * database ping with a short timeout), but a call that has not returned after three intervals
 * counts as "not ready". Never called before init returned or after shutdown began. */
typedef bool (*aq_readiness_fn)(void* ctx);

/*
 * The host's functions, handed to a plugin's init. The table and the aq_host it points to stay
 * valid until the process exits; a plugin keeps the pointer. Slots are only appended.
 */
typedef struct aq_host_api {
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    aq_host* host;

    /* ---- plugin environment ------------------------------------------------------------ */

    /* Writes a log line attributed to this plugin. Thread: any. */
    void (*log)(aq_host* host, aq_log_level level, aq_str message);

    /* The plugin's config section (`plugins.<name>`) as JSON text, with ${ENV} expanded and
     * "database" defaulted to the host's database URL. The view lives as long as the host.
     * Thread: any. */
    aq_str (*config_json)(aq_host* host);

    /* Records why init (or another call) failed; the host copies the text and reports it.
     * Thread: any (the text is kept per calling thread's last init). */
    void (*set_error)(aq_host* host, aq_str message);

    /* True once shutdown has begun: jobs and long handlers should finish quickly. Thread: any. */
    bool (*stopping)(aq_host* host);

    /* ---- registration, only during init (Thread: main) ------------------------------------ */

    /* Adds a route. The host copies the struct and strings. AQ_ERR_EXISTS if method+pattern is
     * taken; AQ_ERR_INVALID for a malformed pattern; AQ_ERR_STATE after init. */
    aq_status (*register_route)(aq_host* host, const aq_route* route);

    /* Adds a periodic job. AQ_ERR_INVALID when interval_ms is 0. */
    aq_status (*register_job)(aq_host* host, const aq_job* job);

    /* Publishes a service table under (name, version). The table is owned by the plugin and
     * must stay valid until the process exits; it carries its own context pointer. */
    aq_status (*register_service)(aq_host* host, aq_str name, uint32_t version, const void* table);

    /* Looks up a service table published by a plugin this one `requires` (or any plugin
     * initialised before it). NULL when absent. Thread: main during init, any afterwards. */
    const void* (*get_service)(aq_host* host, aq_str name, uint32_t version);

    /* ---- request access (Thread: handler of that request) ------------------------------- */

    aq_str (*request_method)(aq_request* req);
    /* The path as the client sent it (including a /v1 prefix), without the query. */
    aq_str (*request_path)(aq_request* req);
    /* A {param} of the route's pattern, percent-decoded. false if the pattern has no such name. */
    bool (*request_param)(aq_request* req, aq_str name, aq_str* value);
    /* The raw query string without '?', len 0 if none. */
    aq_str (*request_query)(aq_request* req);
    /* The first header of that name (case-insensitive). false if absent. */
    bool (*request_header)(aq_request* req, aq_str name, aq_str* value);
    /* The authenticated principal; NULL on AQ_ROUTE_PUBLIC routes. */
    const aq_principal* (*request_principal)(aq_request* req);
    /* The request id the host puts in the x-request-id response header. */
    aq_str (*request_id)(aq_request* req);
    /* Content-Length, or -1 when the body is chunked. 0 for no body. */
    int64_t (*request_content_length)(aq_request* req);

    /* Pulls up to `cap` bytes of the body into `buf`. Returns the number of bytes (> 0), 0 at
     * the end of the body, or the negated aq_status on failure. Usually the host has received
     * the whole body before the handler runs (in memory, or in an unnamed temporary file when
     * large), and this reads at memory or disk speed. A large body that arrives fast may reach
     * its handler while it is still arriving (the host's stream_bodies_after_bytes); then this
     * waits for the next bytes, and returns -AQ_ERR_DISCONNECTED when the client goes away or is
     * cut off before the end. A body over the route's limit never reaches the handler (the host
     * answers as the route says), so -AQ_ERR_TOO_LARGE no longer occurs; -AQ_ERR_INTERNAL means
     * the spool file could not be read. */
    int64_t (*read_body)(aq_request* req, void* buf, size_t cap);

    /* What every response function below checks, on the handler thread, before anything reaches
     * the network: status 200..599; no body with 204 or 304; header names are tokens (RFC 9110)
     * of at most 256 bytes; values hold no CR, LF, NUL or other control character except HTAB,
     * at most 8192 bytes each; at most 100 headers and 64 KiB in all; Content-Length,
     * Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer, Date, Server and
     * x-request-id are the host's to send. A violation returns AQ_ERR_INVALID, and the host
     * answers the client with a 500 and logs which rule was broken (or, once the headers of a
     * streamed response are out, aborts the connection). */

    /* Sends a complete response. The host adds Content-Length, x-request-id, Server and Date.
     * Headers and body are copied. AQ_ERR_STATE if a response was already begun. */
    aq_status (*respond)(aq_request* req, int status, const aq_header* headers, size_t header_count,
                         aq_str body);

    /* Starts a streamed response. content_length >= 0 sends Content-Length; -1 sends chunked.
     * Prefer respond_source (1.1): a streamed response holds the handler's thread for as long as
     * the client takes to read it. */
    aq_status (*begin_response)(aq_request* req, int status, const aq_header* headers,
                                size_t header_count, int64_t content_length);
    /* Sends the next piece of a streamed response; copies it and blocks while the outbound queue
     * is full. AQ_ERR_DISCONNECTED when the client went away, or was cut off for reading slower
     * than the host's min_body_rate_bytes_per_s; AQ_ERR_INVALID past the declared length. */
    aq_status (*write_response)(aq_request* req, aq_str chunk);
    /* Finishes a streamed response. AQ_ERR_INVALID (and an aborted connection) when fewer bytes
     * than the declared length were written. */
    aq_status (*end_response)(aq_request* req);

    /* ---- ABI 1.1: responses that hold no thread while the client reads ------------------- */

    /* Answers with a body the host pulls from `source` as the client reads (see aq_body_source);
     * the handler returns right after, and no thread waits on a slow client. The struct is
     * copied; its ctx stays the plugin's. content_length >= 0 sends Content-Length; -1 sends
     * chunked. From this call on the host owns the source whatever the result: it calls release
     * exactly once. AQ_ERR_STATE if a response was already begun, AQ_ERR_INVALID for a source
     * without read or a response the rules above refuse. Thread: handler. */
    aq_status (*respond_source)(aq_request* req, int status, const aq_header* headers,
                                size_t header_count, int64_t content_length,
                                const aq_body_source* source);

    /* Answers with `length` bytes of the open file `fd` from `offset`, with Content-Length; the
     * host sends them from its I/O thread with sendfile(2) as the client reads, with no thread
     * waiting. From this call on the host owns `fd` whatever the result, and closes it.
     * AQ_ERR_INVALID when fd is not a regular file holding offset + length bytes, or for a
     * response the rules above refuse. The file's content must not change until the response
     * ends (an unlinked file is fine). Thread: handler. */
    aq_status (*respond_file)(aq_request* req, int status, const aq_header* headers,
                              size_t header_count, int fd, uint64_t offset, uint64_t length);

    /* ---- ABI 1.2: metrics ------------------------------------------------------------------ */

    /* Registers a metric family (see aq_metric_def); *metric receives it. A family without
     * labels has its one series from the start (exported as 0). The host copies the definition.
     * AQ_ERR_INVALID for a definition that breaks the rules (the reason is logged and kept as
     * the error), AQ_ERR_EXISTS for a name already taken, AQ_ERR_STATE after init.
     * Thread: main, during init. */
    aq_status (*register_metric)(aq_host* host, const aq_metric_def* def, aq_metric** metric);

    /* The series of `metric` for these label values, in the order of its label names (each
     * valid UTF-8, at most 256 bytes): created at the first call, the same pointer afterwards.
     * Takes a lock, so look a series up once (at init, or the first time a value is seen) and
     * keep it. NULL when the count differs from the family's label count or a value is invalid.
     * Past 10000 series in one family it returns a series that is exported nowhere (and logs
     * that once), so a runaway label cannot exhaust memory. Thread: any. */
    aq_metric_series* (*metric_series)(aq_metric* metric, const aq_str* label_values, size_t count);

    /* Updates, for the hot path: no lock and no allocation. counter_add and the gauge functions
     * are one relaxed atomic operation; histogram_observe is one atomic add to its bucket and
     * one to the sum (a NaN is ignored). A NULL series, or one of another kind, is ignored.
     * Thread: any. */
    void (*counter_add)(aq_metric_series* series, uint64_t amount);
    void (*gauge_set)(aq_metric_series* series, int64_t value);
    void (*gauge_add)(aq_metric_series* series, int64_t delta);
    void (*histogram_observe)(aq_metric_series* series, double value);

    /* ---- ABI 1.2: readiness ---------------------------------------------------------------- */

    /* Registers the plugin's readiness check (see aq_readiness_fn); at most one per plugin.
     * A plugin without one counts as ready once its init returned. AQ_ERR_EXISTS for a second
     * one, AQ_ERR_INVALID for NULL, AQ_ERR_STATE after init. Thread: main, during init. */
    aq_status (*register_readiness)(aq_host* host, aq_readiness_fn ready, void* ctx);
} aq_host_api;

/*
 * The plugin's descriptor, returned by aq_plugin_entry_v1(). Static, owned by the plugin.
 */
typedef struct aq_plugin {
    size_t struct_size;
    uint32_t abi_major;     /* AQ_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;     /* AQ_ABI_MINOR the plugin was built with */
    aq_str name;            /* informative; the config key names the plugin */
    aq_str version;         /* the plugin's own version, for logs */

    /* Called once on the main thread, in dependency order. Registers routes, jobs and services
     * and stores `api` for later. On failure returns non-AQ_OK after calling api->set_error().
     * *plugin_ctx is passed back to shutdown. */
    aq_status (*init)(const aq_host_api* api, void** plugin_ctx);

    /* Called once on the main thread after routes and jobs have stopped, in reverse dependency
     * order. May be NULL. */
    void (*shutdown)(void* plugin_ctx);
} aq_plugin;

typedef const aq_plugin* (*aq_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* AQUEDUCT_ABI_H */
