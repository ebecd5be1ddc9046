// A program other than aqueductd run by a test (the aqueduct-files tool), with its output in a
// file that the test can watch while it runs: to wait for a line, then kill it at that moment.
//
//   aqt::child_process move(aqt::files_tool_path(), {"move", "--config", cfg, "--to", "filesystem"});
//   BOOST_TEST(move.wait_for_output("test pause at move_copied"));
//   move.kill9();
#pragma once

#include "gateway.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace aqt {

class child_process {
public:
    // Starts `program` with `args`, the test's environment plus `env`, stdout and stderr into one
    // file of a temp dir. Throws std::runtime_error when it cannot start.
    child_process(const std::filesystem::path& program, const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {});
    ~child_process();  // kills it (SIGKILL) if it still runs, removes the temp dir
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    std::string output() const;
    bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
    // Waits for it to exit; throws std::runtime_error on timeout.
    exit_status wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    void kill9();

private:
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    exit_status status_;
};

// The aqueduct-files tool of this build.
std::filesystem::path files_tool_path();

}  // namespace aqt
