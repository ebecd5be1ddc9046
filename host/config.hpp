// The host's config file: one JSON document, validated strictly.
//
// Unknown keys and wrong types are errors naming the key's path ("plugins.files.enabled: expected
// a boolean"), because a typo that is silently ignored is worse than a refusal to start. ${ENV}
// references in string values are expanded; relative paths (plugin_dir, sqlite: databases) are
// resolved against the config file's folder, so a config works from any working directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace aqd {

struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct token_config {
    std::string name;
    std::string user;
    std::string team;    // empty for a personal token
    std::string sha256;  // lowercase hex of the token
};

// Who may read GET /metrics.
enum class metrics_access { token, open, off };  // any configured token; no token needed; no endpoint

// The TLS listener (README, "Operating aqueduct"), beside the plain one.
struct tls_config {
    bool enabled = false;
    std::string listen_address;
    std::uint16_t listen_port = 0;
    std::filesystem::path certificate;  // PEM: the certificate, then its chain
    std::filesystem::path private_key;  // PEM
    int min_version = 12;               // 12: TLS 1.2, 13: TLS 1.3
};

struct plugin_config {
    std::string name;
    bool enabled = false;
    std::vector<std::string> requires_;
    // The whole `plugins.<name>` object as JSON text, ${ENV} expanded, with "database" set to the
    // host's database when absent (and a relative sqlite: path resolved). The plugin validates
    // its own keys at init; `enabled` and `requires` stay in the text.
    std::string json;
};

// The network threads when the config names none: one per core, at most 4. One thread parses,
// encrypts and writes for every connection, and on a busy gateway it was the limit: on 2 cores,
// small GETs ran 10-25% faster with 2 than with 1 (files_bench's metadata GET). Past 4, the
// workers (handlers, the database) are where more cores help.
unsigned default_io_threads();

struct config {
    std::string listen_address = "127.0.0.1";
    std::uint16_t listen_port = 8080;   // 0: any free port (the log says which)
    unsigned workers = 16;              // handler threads
    unsigned io_threads = default_io_threads();  // network threads
    std::string database;               // "sqlite:/abs/path" or "postgresql://..."
    std::filesystem::path plugin_dir;
    std::filesystem::path config_dir;   // folder of the config file
    std::vector<token_config> tokens;
    std::vector<plugin_config> plugins;  // in file order, enabled or not
    std::string log_level = "info";      // debug | info | warn | error

    // HTTP limits.
    std::size_t max_header_bytes = 16 * 1024;
    std::uint32_t header_timeout_ms = 10'000;    // to receive a request's headers
    std::uint32_t idle_timeout_ms = 60'000;      // keep-alive connection without a request
    std::uint32_t body_timeout_ms = 60'000;      // between two pieces of a body / response
    std::uint32_t shutdown_timeout_ms = 30'000;  // in-flight requests after SIGTERM
    std::uint64_t max_drain_bytes = 1 << 20;     // body read and discarded after an early answer

    // What one client may take (README, "How the host protects itself").
    std::uint32_t max_connections = 10'000;          // open connections at once
    std::uint32_t max_connections_per_ip = 0;        // per client address; 0: no limit
    std::uint32_t max_requests_per_principal = 32;   // requests of one token at once (429 beyond)
    std::uint32_t max_queued_requests = 1024;        // requests waiting for a worker (503 beyond)
    std::uint64_t min_body_rate_bytes_per_s = 1024;  // slower request/response bodies are cut; 0: off
    std::uint32_t body_rate_window_ms = 10'000;      // the rate is measured over windows this long

    // Request bodies are read completely before the handler runs: the first spool_memory_bytes in
    // memory, the rest in an unnamed file in spool_dir.
    std::filesystem::path spool_dir;                 // empty: $TMPDIR, else /tmp
    std::uint64_t spool_memory_bytes = 64 * 1024;
    std::uint64_t max_spool_bytes = 0;               // all bodies being spooled or handled; 0: no limit
    // Except a large body that proves fast: once stream_bodies_after_bytes of it arrived, its
    // handler starts and reads it as it comes (0: never). At most max_streaming_bodies handlers
    // wait on their clients so (default: a quarter of the workers), so slow clients can hold no
    // more threads than that; it must be below workers.
    std::uint64_t stream_bodies_after_bytes = 1 << 20;
    std::uint32_t max_streaming_bodies = 4;

    // Operations (README, "Operating aqueduct").
    metrics_access metrics = metrics_access::token;
    std::string access_log = "off";              // "off", "stdout", "stderr" or a file path
    std::uint32_t readiness_interval_ms = 1000;  // how often plugins' readiness checks run
    tls_config tls;
};

// Looks up an environment variable; injectable for tests.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;
env_lookup process_env();

// Parses config text. Throws config_error whose message starts with the key path.
config parse_config(std::string_view text, const std::filesystem::path& config_dir,
                    const env_lookup& env = process_env());

// Reads and parses a file. Throws config_error (also for an unreadable file).
config load_config(const std::filesystem::path& file);

// The effective config as JSON text: every host key with the value in force (defaults
// included, paths resolved, ${ENV} expanded) and each plugin's section as its plugin receives it.
// A literal "${" is written as "$${", so the text parses back to the same config. `redact`
// replaces secrets with "<redacted>": token digests, the password in any database URL, and in
// plugin sections every value under a key that names a secret (password, secret, api_key,
// token, private_key, credential, passphrase, authorization). `pretty` indents by two spaces.
std::string effective_json(const config& cfg, bool redact, bool pretty);

// The top-level keys whose values differ between two configs ("tokens", "workers", ...; plugin
// sections as "plugins.NAME"): what a reload would change.
std::vector<std::string> changed_keys(const config& before, const config& after);

}  // namespace aqd
