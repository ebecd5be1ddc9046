#include "bench_nginx.hpp"

#include "support/gateway.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace aqbench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

unsigned short free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind to a free port failed");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

namespace {

bool alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH); }

}  // namespace

nginx_server::nginx_server(const fs::path& dir) : dir_(dir), root_(dir / "root") {
    fs::create_directories(root_ / "dav");
    fs::create_directories(dir_ / "logs");
    // The body of a PUT is written to a temp file in the DAV folder's filesystem and renamed, so
    // the reference writes the bytes once, like the filesystem store.
    fs::create_directories(root_ / "dav" / ".body");
    // Temp folders of modules the bench does not use: nginx checks them at start, and their
    // compiled-in defaults (/var/lib/nginx) may not exist.
    std::string unused_temp_paths;
    for (const char* module : {"proxy", "fastcgi", "uwsgi", "scgi"})
        unused_temp_paths += std::string("  ") + module + "_temp_path " + (dir_ / "logs").string() + ";\n";
    // The port is picked here and bound by nginx: another process may take it in between, so a
    // refused start is tried again on another port.
    std::string last_output;
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_port();
        const fs::path conf = dir_ / "nginx.conf";
        std::ofstream(conf) << "daemon on;\n"
                               "master_process on;\n"
                               "worker_processes auto;\n"
                               "user root;\n"
                               "pid "
                            << (dir_ / "nginx.pid").string()
                            << ";\n"
                               "error_log "
                            << (dir_ / "logs" / "error.log").string()
                            << " warn;\n"
                               "events { worker_connections 1024; }\n"
                               "http {\n"
                               "  access_log off;\n"
                               "  sendfile on;\n"
                               "  tcp_nopush on;\n"
                               "  keepalive_requests 1000000;\n"
                               "  default_type application/json;\n"
                               "  client_max_body_size 0;\n"
                               "  client_body_temp_path "
                            << (root_ / "dav" / ".body").string()
                            << ";\n"
                            << unused_temp_paths << "  server {\n"
                               "    listen 127.0.0.1:"
                            << port_
                            << ";\n"
                               "    root "
                            << root_.string()
                            << ";\n"
                               "    location /dav/ { dav_methods PUT DELETE; create_full_put_path on; }\n"
                               "  }\n"
                               "}\n";
        auto r = aqt::run_program("nginx", {"-c", conf.string(), "-p", dir_.string(), "-e",
                                            (dir_ / "logs" / "error.log").string()});
        if (r.status.success()) {
            std::ifstream in(dir_ / "nginx.pid");
            in >> pid_;
            if (alive(pid_)) return;
        }
        std::ifstream err(dir_ / "logs" / "error.log");
        last_output = r.output + std::string(std::istreambuf_iterator<char>(err), {});
    }
    throw std::runtime_error("nginx did not start: " + last_output);
}

nginx_server::~nginx_server() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);
    for (int i = 0; i < 1000 && alive(pid_); ++i) std::this_thread::sleep_for(10ms);
    if (alive(pid_)) ::kill(pid_, SIGKILL);
}

std::string nginx_server::url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
}

}  // namespace aqbench
