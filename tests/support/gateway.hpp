// A real aqueductd for integration tests.
//
//   aqt::gateway gw({{"plugins", {{"testplug", {{"enabled", true}}}}}});
//   aqt::http::client c(gw.port());
//   auto r = c.request("GET", "/echo", {{"Authorization", gw.bearer("alice")}});
//
// Each instance gets a fresh temp dir holding its config file, its SQLite database, its log and
// a plugin dir with links to every plugin built in this tree (the product plugins and the test
// fixtures). Keys the test leaves out of the config are filled in:
//   listen      "127.0.0.1:0" (the port is parsed from the "listening on http://" log line)
//   database    "sqlite:<dir>/aqueduct.db"
//   plugin_dir  "<dir>/plugins"
//   tokens      fresh random tokens for alice, bob and carol (carol's token is a team token of
//               team "research") and "research-user" (user "research", no team: the user whose
//               name equals carol's team); only their SHA-256 is written to the config
//   plugins     {}
// The process is started with posix_spawn, stdout and stderr going to the log file.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace aqt {

using namespace std::chrono_literals;

struct gateway_options {
    boost::json::object config;
    // Extra environment for the process (on top of the test's own), e.g. for ${ENV} expansion.
    std::map<std::string, std::string> env;
    // Extra plugin libraries linked into the instance's plugin dir (e.g. one built at run time).
    std::vector<std::filesystem::path> extra_plugins;
    // Fill in the defaults listed above for absent keys. false: the config is written as given.
    bool fill_defaults = true;
    // When not empty: written as the config file verbatim instead of `config` (malformed JSON).
    std::string raw_config;
    // The process's working directory; empty: the instance's temp dir.
    std::filesystem::path working_dir;
    std::chrono::milliseconds startup_timeout = 20s;
    // When > 0: RLIMIT_NOFILE (soft and hard) of the process, set in the child before exec.
    unsigned max_open_files = 0;
};

// The exit status of a process: `code` when it exited, `signal` when a signal ended it.
struct exit_status {
    bool exited = false;
    int code = -1;
    int signal = 0;
    bool success() const noexcept { return exited && code == 0; }
    std::string describe() const;
    // From waitpid's status.
    static exit_status from_wait(int raw) noexcept;
};

// What an aqueductd that was expected to refuse to start did.
struct startup_failure {
    exit_status status;
    std::string log;
};

class gateway {
public:
    explicit gateway(boost::json::object config = {});
    explicit gateway(gateway_options options);
    ~gateway();  // stop(); kills with SIGKILL when it does not exit within 20 s
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    unsigned short port() const noexcept { return port_; }
    // The TLS listener's port, when the config has "tls" (from "listening on https://").
    unsigned short tls_port() const noexcept { return tls_port_; }
    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0; }
    std::string base_url() const;  // "http://127.0.0.1:PORT"

    // The plaintext token of a principal ("alice", "bob", "carol"); throws for an unknown name.
    const std::string& token(std::string_view name) const;
    std::string bearer(std::string_view name) const { return "Bearer " + token(name); }

    // Everything the current process wrote to stdout/stderr so far.
    std::string log() const;
    // Waits until the log contains `needle`; false on timeout.
    bool wait_for_log(std::string_view needle, std::chrono::milliseconds timeout = 10s) const;
    // How often `needle` occurs in the log so far.
    std::size_t log_count(std::string_view needle) const;

    const std::filesystem::path& dir() const noexcept { return dir_; }
    const std::filesystem::path& config_path() const noexcept { return config_path_; }
    const boost::json::object& config() const noexcept { return config_; }

    void signal(int sig);
    void kill9();
    // Waits for the process to exit; throws std::runtime_error on timeout.
    exit_status wait_exit(std::chrono::milliseconds timeout = 20s);
    // SIGTERM and wait; returns the exit status (also when already exited).
    exit_status stop(std::chrono::milliseconds timeout = 20s);
    // stop() if running, then start again with the same config, database and plugin dir.
    void restart();

private:
    void start();

    gateway_options options_;
    boost::json::object config_;
    std::map<std::string, std::string, std::less<>> tokens_;
    std::filesystem::path dir_, config_path_, log_path_;
    int runs_ = 0;
    pid_t pid_ = -1;
    unsigned short port_ = 0, tls_port_ = 0;
    exit_status last_status_;
};

// Starts aqueductd with this config and expects it to exit on its own before listening. Throws
// std::runtime_error (after killing it) if it starts listening or does not exit in time.
startup_failure expect_startup_failure(gateway_options options);
startup_failure expect_startup_failure(boost::json::object config);

// Runs aqueductd with arbitrary arguments and stdin, e.g. {"hash-token"}; returns status + output.
struct command_result {
    exit_status status;
    std::string output;  // stdout and stderr, interleaved
};
command_result run_aqueductd(const std::vector<std::string>& args, std::string_view stdin_data = {},
                             std::chrono::milliseconds timeout = 20s);
// The same for any program (promtool, openssl, curl, node): `program` is a path, or a name
// looked up in PATH when it has no '/'. `env` is added to the test's environment.
command_result run_program(const std::filesystem::path& program, const std::vector<std::string>& args,
                           std::string_view stdin_data = {}, std::chrono::milliseconds timeout = 20s,
                           const std::map<std::string, std::string>& env = {});

// The path of the aqueductd binary and of the directory holding the test fixture plugins.
std::filesystem::path aqueductd_path();
std::filesystem::path fixture_plugin_dir();

}  // namespace aqt
