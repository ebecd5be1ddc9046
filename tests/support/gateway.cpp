#include "gateway.hpp"

#include "aqt_build_paths.h"
#include "digest.hpp"

#include <boost/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <signal.h>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;


namespace fs = std::filesystem;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace aqt {

namespace {

constexpr std::string_view listening_marker = "listening on http://";
constexpr std::string_view tls_listening_marker = "listening on https://";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_file(const fs::path& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

fs::path make_temp_dir(const char* prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    return tmpl;
}

bool keep_dirs() {
    const char* keep = std::getenv("AQT_KEEP_DIRS");
    return keep && *keep && std::string_view(keep) != "0";
}

void remove_dir(const fs::path& dir) {
    if (dir.empty() || keep_dirs()) return;
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// Non-blocking reap; true and `out` set when the child has exited.
bool try_reap(pid_t pid, exit_status& out) {
    int raw = 0;
    pid_t r = ::waitpid(pid, &raw, WNOHANG);
    if (r == pid) {
        out = exit_status::from_wait(raw);
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        out = exit_status{};
        return true;
    }
    return false;
}

bool reap_within(pid_t pid, std::chrono::milliseconds timeout, exit_status& out) {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
        if (try_reap(pid, out)) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        auto eq = entry.find('=');
        if (extra.count(std::string(entry.substr(0, eq)))) continue;
        env.emplace_back(entry);
    }
    for (auto& [k, v] : extra) env.push_back(k + "=" + v);
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

struct spawn_io {
    fs::path program;        // empty: aqueductd
    fs::path output;         // stdout + stderr go here
    int stdin_fd = -1;       // -1: /dev/null
    fs::path cwd;
    unsigned max_open_files = 0;  // > 0: RLIMIT_NOFILE of the child
};

// fork + setrlimit + exec, for what posix_spawn cannot set up. The child only calls
// async-signal-safe functions; everything it needs is prepared before the fork.
pid_t spawn_with_limit(std::vector<char*>& argv, std::vector<char*>& envp, const spawn_io& io) {
    const int out = ::open(io.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) throw std::runtime_error("open " + io.output.string() + ": " + std::strerror(errno));
    const int in = io.stdin_fd >= 0 ? io.stdin_fd : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const rlimit limit{io.max_open_files, io.max_open_files};
    const std::string cwd = io.cwd.string();
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(127);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(127);
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(127);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    const int err = errno;
    ::close(out);
    if (io.stdin_fd < 0) ::close(in);
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(err));
    return pid;
}

pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env_extra,
            const spawn_io& io) {
    const std::string program = io.program.empty() ? aqueductd_path().string() : io.program.string();
    if (io.max_open_files > 0) {
        std::vector<std::string> argv_store = args;
        argv_store.insert(argv_store.begin(), program);
        auto argv = c_strings(argv_store);
        auto env_store = environment_with(env_extra);
        auto envp = c_strings(env_store);
        return spawn_with_limit(argv, envp, io);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (io.stdin_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, io.stdin_fd, 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, io.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (!io.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, io.cwd.c_str());

    std::vector<std::string> argv_store = args;
    argv_store.insert(argv_store.begin(), program);
    auto argv = c_strings(argv_store);
    auto env_store = environment_with(env_extra);
    auto envp = c_strings(env_store);

    pid_t pid = -1;
    // A bare name is looked up in PATH (promtool, openssl, curl, node).
    const bool in_path = program.find('/') == std::string::npos;
    int rc = in_path ? ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data())
                     : ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error("posix_spawn " + argv_store[0] + ": " + std::strerror(rc));
    return pid;
}

// Port from the first "listening on http://ADDR:PORT" line (or the https:// one); 0 when not
// there yet.
unsigned short parse_port(std::string_view log, std::string_view marker = listening_marker) {
    auto at = log.find(marker);
    if (at == std::string_view::npos) return 0;
    std::string_view rest = log.substr(at + marker.size());
    auto end = rest.find_first_of(" \t\r\n/");
    if (end == std::string_view::npos) return 0;  // line not complete yet
    std::string_view addr = rest.substr(0, end);
    auto colon = addr.rfind(':');
    if (colon == std::string_view::npos) return 0;
    unsigned long port = 0;
    for (char c : addr.substr(colon + 1)) {
        if (c < '0' || c > '9') return 0;
        port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    return port > 0 && port < 65536 ? static_cast<unsigned short>(port) : 0;
}

std::vector<fs::path> built_plugin_files() {
    std::vector<fs::path> files;
    std::string_view list = AQ_TEST_PLUGIN_FILES;
    while (!list.empty()) {
        auto semi = list.find('|');
        std::string_view item = list.substr(0, semi);
        if (!item.empty()) files.emplace_back(std::string(item));
        list = semi == std::string_view::npos ? std::string_view() : list.substr(semi + 1);
    }
    std::error_code ec;
    for (auto& entry : fs::directory_iterator(fixture_plugin_dir(), ec))
        if (entry.path().extension() == ".so") files.push_back(entry.path());
    return files;
}

void link_plugins(const fs::path& dir, const std::vector<fs::path>& extra) {
    fs::create_directories(dir);
    auto files = built_plugin_files();
    files.insert(files.end(), extra.begin(), extra.end());
    for (auto& file : files) {
        std::error_code ec;
        if (!fs::exists(file, ec)) continue;
        fs::path link = dir / file.filename();
        fs::remove(link, ec);  // a later (extra) plugin replaces a built one of the same name
        fs::create_symlink(fs::absolute(file), link);
    }
}

struct principal_spec {
    const char* name;
    const char* user;
    const char* team;
};
constexpr principal_spec default_principals[] = {
    {"alice", "alice", nullptr},
    {"bob", "bob", nullptr},
    {"carol", "carol", "research"},
    {"research-user", "research", nullptr},  // a user named like carol's team
};

// Fills defaults into `cfg`; returns the plaintext tokens it generated.
std::map<std::string, std::string, std::less<>> fill_defaults(json::object& cfg, const fs::path& dir) {
    std::map<std::string, std::string, std::less<>> tokens;
    if (!cfg.contains("listen")) cfg["listen"] = "127.0.0.1:0";
    if (!cfg.contains("database")) cfg["database"] = "sqlite:" + (dir / "aqueduct.db").string();
    if (!cfg.contains("plugin_dir")) cfg["plugin_dir"] = (dir / "plugins").string();
    if (!cfg.contains("plugins")) cfg["plugins"] = json::object();
    if (!cfg.contains("tokens")) {
        json::array arr;
        for (auto& p : default_principals) {
            std::string token = "aqt-" + random_hex(24);
            json::object t{{"name", p.name}, {"user", p.user}, {"sha256", sha256_hex(token)}};
            if (p.team) t["team"] = p.team;
            arr.push_back(std::move(t));
            tokens.emplace(p.name, std::move(token));
        }
        cfg["tokens"] = std::move(arr);
    }
    return tokens;
}

gateway_options make_options(json::object config) {
    gateway_options o;
    o.config = std::move(config);
    return o;
}

std::string config_text(const gateway_options& o, const json::object& cfg) {
    return o.raw_config.empty() ? json::serialize(cfg) : o.raw_config;
}

}  // namespace

exit_status exit_status::from_wait(int raw) noexcept {
    exit_status s;
    if (WIFEXITED(raw)) {
        s.exited = true;
        s.code = WEXITSTATUS(raw);
    } else if (WIFSIGNALED(raw)) {
        s.signal = WTERMSIG(raw);
    }
    return s;
}

std::string exit_status::describe() const {
    if (exited) return "exit code " + std::to_string(code);
    if (signal) return std::string("signal ") + ::strsignal(signal);
    return "unknown status";
}

fs::path aqueductd_path() { return AQ_TEST_AQUEDUCTD; }
fs::path fixture_plugin_dir() { return AQ_TEST_FIXTURE_PLUGIN_DIR; }

gateway::gateway(json::object config) : gateway(make_options(std::move(config))) {}

gateway::gateway(gateway_options options) : options_(std::move(options)) {
    dir_ = make_temp_dir("aqt-gw");
    try {
        config_ = options_.config;
        if (options_.fill_defaults) tokens_ = fill_defaults(config_, dir_);
        link_plugins(dir_ / "plugins", options_.extra_plugins);
        config_path_ = dir_ / "aqueduct.json";
        write_file(config_path_, config_text(options_, config_));
        start();
    } catch (...) {
        remove_dir(dir_);
        throw;
    }
}

gateway::~gateway() {
    try {
        if (running()) {
            signal(SIGTERM);
            if (!reap_within(pid_, 20s, last_status_)) {
                ::kill(pid_, SIGKILL);
                reap_within(pid_, 5s, last_status_);
            }
            pid_ = -1;
        }
    } catch (...) {
    }
    remove_dir(dir_);
}

void gateway::start() {
    ++runs_;
    log_path_ = dir_ / ("aqueductd." + std::to_string(runs_) + ".log");
    port_ = 0;
    pid_ = spawn({"--config", config_path_.string()}, options_.env,
                 spawn_io{{}, log_path_, -1, options_.working_dir.empty() ? dir_ : options_.working_dir,
                          options_.max_open_files});
    auto deadline = clock_type::now() + options_.startup_timeout;
    const bool tls = config_.contains("tls");
    for (;;) {
        const std::string text = read_file(log_path_);
        if (unsigned short p = parse_port(text)) {
            // With TLS the https line follows the http one.
            const unsigned short t = tls ? parse_port(text, tls_listening_marker) : 0;
            if (!tls || t) {
                port_ = p;
                tls_port_ = t;
                return;
            }
        }
        exit_status st;
        if (try_reap(pid_, st)) {
            pid_ = -1;
            last_status_ = st;
            throw std::runtime_error("aqueductd exited before listening (" + st.describe() + "); log:\n" +
                                     read_file(log_path_));
        }
        if (clock_type::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            reap_within(pid_, 5s, last_status_);
            pid_ = -1;
            throw std::runtime_error("aqueductd did not print \"listening on http://\" within " +
                                     std::to_string(options_.startup_timeout.count()) + " ms; log:\n" +
                                     read_file(log_path_));
        }
        std::this_thread::sleep_for(10ms);
    }
}

std::string gateway::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

const std::string& gateway::token(std::string_view name) const {
    auto it = tokens_.find(name);
    if (it == tokens_.end()) throw std::out_of_range("aqt::gateway: no token named " + std::string(name));
    return it->second;
}

std::string gateway::log() const { return read_file(log_path_); }

bool gateway::wait_for_log(std::string_view needle, std::chrono::milliseconds timeout) const {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
        if (log().find(needle) != std::string::npos) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
}

std::size_t gateway::log_count(std::string_view needle) const {
    const std::string text = log();
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return n;
}

void gateway::signal(int sig) {
    if (!running()) throw std::logic_error("aqt::gateway::signal: process is not running");
    if (::kill(pid_, sig) != 0) throw std::runtime_error(std::string("kill: ") + std::strerror(errno));
}

void gateway::kill9() {
    signal(SIGKILL);
    wait_exit(10s);
}

exit_status gateway::wait_exit(std::chrono::milliseconds timeout) {
    if (!running()) return last_status_;
    if (!reap_within(pid_, timeout, last_status_))
        throw std::runtime_error("aqueductd did not exit within " + std::to_string(timeout.count()) +
                                 " ms; log:\n" + log());
    pid_ = -1;
    return last_status_;
}

exit_status gateway::stop(std::chrono::milliseconds timeout) {
    if (!running()) return last_status_;
    signal(SIGTERM);
    return wait_exit(timeout);
}

void gateway::restart() {
    stop();
    start();
}

startup_failure expect_startup_failure(json::object config) {
    return expect_startup_failure(make_options(std::move(config)));
}

startup_failure expect_startup_failure(gateway_options options) {
    fs::path dir = make_temp_dir("aqt-fail");
    struct cleanup {
        fs::path d;
        ~cleanup() { remove_dir(d); }
    } guard{dir};
    json::object cfg = options.config;
    if (options.fill_defaults) fill_defaults(cfg, dir);
    link_plugins(dir / "plugins", options.extra_plugins);
    fs::path config_path = dir / "aqueduct.json";
    write_file(config_path, config_text(options, cfg));
    fs::path log_path = dir / "aqueductd.log";
    pid_t pid = spawn({"--config", config_path.string()}, options.env, spawn_io{{}, log_path, -1, options.working_dir.empty() ? dir : options.working_dir});
    auto deadline = clock_type::now() + options.startup_timeout;
    for (;;) {
        exit_status st;
        if (try_reap(pid, st)) return startup_failure{st, read_file(log_path)};
        std::string log = read_file(log_path);
        if (parse_port(log) != 0 || clock_type::now() >= deadline) {
            ::kill(pid, SIGKILL);
            reap_within(pid, 5s, st);
            throw std::runtime_error(std::string("aqueductd was expected to refuse to start but ") +
                                     (parse_port(log) ? "it is listening" : "it neither listened nor exited") +
                                     "; log:\n" + log);
        }
        std::this_thread::sleep_for(5ms);
    }
}

command_result run_aqueductd(const std::vector<std::string>& args, std::string_view stdin_data,
                             std::chrono::milliseconds timeout) {
    return run_program(aqueductd_path(), args, stdin_data, timeout);
}

command_result run_program(const std::filesystem::path& program, const std::vector<std::string>& args,
                           std::string_view stdin_data, std::chrono::milliseconds timeout,
                           const std::map<std::string, std::string>& env) {
    fs::path dir = make_temp_dir("aqt-run");
    struct cleanup {
        fs::path d;
        ~cleanup() { remove_dir(d); }
    } guard{dir};
    // stdin comes from a file: no pipe to keep open, no deadlock on a large input.
    fs::path in_path = dir / "stdin", out_path = dir / "output";
    write_file(in_path, stdin_data);
    int in_fd = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) throw std::runtime_error("open " + in_path.string());
    pid_t pid;
    try {
        pid = spawn(args, env, spawn_io{program, out_path, in_fd, dir});
    } catch (...) {
        ::close(in_fd);
        throw;
    }
    ::close(in_fd);
    exit_status st;
    if (!reap_within(pid, timeout, st)) {
        ::kill(pid, SIGKILL);
        reap_within(pid, 5s, st);
        throw std::runtime_error(program.filename().string() + " did not exit within " + std::to_string(timeout.count()) +
                                 " ms");
    }
    return command_result{st, read_file(out_path)};
}

}  // namespace aqt
