// The fake upstream as a standalone program: `fake_upstream [port] [latency_ms]`. Prints
// "listening on http://127.0.0.1:PORT/v1" and serves until SIGINT/SIGTERM. Configure it over
// HTTP (POST /_config) and read counts with GET /_counts; see fake_upstream.hpp.
#include "fake_upstream.hpp"

#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 0;
    aqt::fake_upstream up(port);
    if (argc > 2) up.set_latency(std::chrono::milliseconds(std::atoi(argv[2])));
    up.clear_path_prefix();
    std::cout << "listening on " << up.base_url() << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
