#include "child_process.hpp"

#include "aqt_build_paths.h"
#include "digest.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>

extern char** environ;

namespace aqt {
namespace {

using clock_type = std::chrono::steady_clock;

}  // namespace

std::filesystem::path files_tool_path() { return AQ_TEST_FILES_TOOL; }

child_process::child_process(const std::filesystem::path& program, const std::vector<std::string>& args,
                             const std::map<std::string, std::string>& env) {
    dir_ = std::filesystem::temp_directory_path() / ("aqt-proc-" + random_hex(6));
    std::filesystem::create_directories(dir_);
    const std::string output = (dir_ / "output").string();

    std::vector<std::string> argv_store{program.string()};
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<std::string> env_store;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        if (!env.count(std::string(entry.substr(0, entry.find('='))))) env_store.emplace_back(entry);
    }
    for (const auto& [k, v] : env) env_store.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    for (auto& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        std::filesystem::remove_all(dir_);
        throw std::runtime_error("posix_spawn " + program.string() + ": " + std::strerror(rc));
    }
}

child_process::~child_process() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int raw = 0;
        ::waitpid(pid_, &raw, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string child_process::output() const {
    std::ifstream in(dir_ / "output", std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool child_process::wait_for_output(std::string_view needle, std::chrono::milliseconds timeout) const {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
        if (output().find(needle) != std::string::npos) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

exit_status child_process::wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return status_;
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
        int raw = 0;
        pid_t r = ::waitpid(pid_, &raw, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return status_ = exit_status::from_wait(raw);
        }
        if (clock_type::now() >= deadline)
            throw std::runtime_error("the process did not exit in time; its output:\n" + output());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void child_process::kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
}

}  // namespace aqt
