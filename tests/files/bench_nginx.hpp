// The nginx that files_bench measures the gateway against: Debian's nginx-light (it has the DAV
// module), started with a config of its own on a free 127.0.0.1 port, serving one folder:
//
//   PUT /dav/NAME     WebDAV write to disk (the body goes to a temp file in the same folder, then
//                     is renamed: one write of the bytes, no fsync, nginx's defaults)
//   GET /dav/NAME     the file with sendfile
//   GET /meta.json    a small static file (the gateway's metadata answer, same bytes)
//
// `worker_processes auto` (one per core) and the access log off, as in the gateway's default
// config.
#pragma once

#include <filesystem>
#include <string>
#include <sys/types.h>

namespace aqbench {

class nginx_server {
public:
    // Writes the config under `dir` and starts nginx as a daemon; throws std::runtime_error with
    // nginx's output when it does not start.
    explicit nginx_server(const std::filesystem::path& dir);
    ~nginx_server();  // stops it (SIGQUIT, then SIGKILL after 10 s)
    nginx_server(const nginx_server&) = delete;
    nginx_server& operator=(const nginx_server&) = delete;

    unsigned short port() const noexcept { return port_; }
    std::string url(const std::string& path) const;
    // The folder PUT writes into and GET reads from.
    const std::filesystem::path& root() const noexcept { return root_; }
    pid_t master_pid() const noexcept { return pid_; }

private:
    std::filesystem::path dir_, root_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that nobody listened on a moment ago.
unsigned short free_port();

}  // namespace aqbench
