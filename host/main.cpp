// aqueductd: the gateway host.
//
//   aqueductd --config FILE       serve until SIGTERM or SIGINT (SIGHUP reloads, SIGUSR1 reopens logs)
//   aqueductd check-config FILE   validate a config, print it as it would be in force (secrets redacted)
//   aqueductd hash-token          read a token on stdin, print its SHA-256 for the config's tokens
//   aqueductd --version
#include "auth.hpp"
#include "check_config.hpp"
#include "config.hpp"
#include "gateway.hpp"
#include "log.hpp"

#include <aqueduct/abi.h>

#include <malloc.h>
#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>

namespace {

constexpr const char* usage =
    "usage: aqueductd --config FILE\n"
    "       aqueductd check-config FILE\n"
    "       aqueductd hash-token < token-file\n"
    "       aqueductd --version\n";

int hash_token() {
    std::string token((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    // A token piped from echo or a file ends with a newline that is not part of it.
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty()) {
        std::cerr << "aqueductd hash-token: no token on standard input\n";
        return 2;
    }
    std::cout << aqd::sha256_hex(token) << "\n";
    return 0;
}

// Every connection costs a descriptor. The soft limit is often 1024 while the hard one is far
// higher; like Go's runtime, raise the soft limit to the hard one, so max_connections rather
// than an accident of the environment decides how many clients fit.
void raise_open_file_limit(const aqd::config& cfg) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        const rlim_t before = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            aqd::log::info("host", "open file limit raised from " + std::to_string(before) + " to " +
                                       std::to_string(rl.rlim_cur));
        else
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    // Descriptors beyond connections: database, spool and plugin files, the listener, logs.
    constexpr rlim_t reserve = 256;
    if (static_cast<rlim_t>(cfg.max_connections) + reserve > rl.rlim_cur)
        aqd::log::warn("host", "max_connections " + std::to_string(cfg.max_connections) +
                                   " does not fit the open file limit of " + std::to_string(rl.rlim_cur) +
                                   ": when descriptors run out, accepting pauses until connections close");
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "hash-token" && argc == 2) return hash_token();
        if (arg == "check-config" && i == 1) {
            if (argc != 3) {
                std::cerr << usage;
                return 2;
            }
            return aqd::check_config(argv[2], std::cout, std::cerr);
        }
        if (arg == "--version") {
            std::cout << "aqueductd 0.1.0 (plugin ABI " << AQ_ABI_MAJOR << "." << AQ_ABI_MINOR << ")\n";
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            return 0;
        }
        if (arg == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            config_path = arg.substr(9);
        } else {
            std::cerr << "aqueductd: unknown argument '" << arg << "'\n" << usage;
            return 2;
        }
    }
    if (config_path.empty()) {
        std::cerr << usage;
        return 2;
    }

    // Large buffers (the stores' 1 MiB chunks) are allocated on whichever worker pulls the next
    // piece of a response. With glibc's dynamic mmap threshold each worker's arena then keeps a
    // freed chunk or two: measured with files_bench, the peak RSS of a download went from 22 to
    // 47 MiB. A fixed threshold maps such buffers directly and gives them back when freed.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    // Block the gateway's signals (termination, reload, log reopening) before any thread exists,
    // so every thread inherits the mask and the gateway receives them with sigwait on the main
    // thread. A peer closing a socket must not
    // kill the process either.
    const sigset_t signals = aqd::gateway_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    aqd::config cfg;
    try {
        cfg = aqd::load_config(config_path);
    } catch (const aqd::config_error& e) {
        aqd::log::error("host", std::string("invalid config: ") + e.what());
        return 2;
    }
    aq_log_level level = AQ_LOG_INFO;
    aqd::log::parse_level(cfg.log_level, level);
    aqd::log::set_level(level);
    raise_open_file_limit(cfg);
    return aqd::run_gateway(cfg, config_path);
}
