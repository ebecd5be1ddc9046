// The throwaway PostgreSQL server of the CTest fixture "postgres" (tests/support/postgres.sh).
//
// A suite that needs it is registered with FIXTURES postgres; postgres_url() then returns a
// connection URI "postgresql://user:password@127.0.0.1:PORT/dbname". By default every call
// creates a fresh, empty database, so suites (and tests) never see each other's rows.
#pragma once

#include <string>

namespace aqt {

// Throws std::runtime_error when the fixture did not run (the suite is not registered with
// FIXTURES postgres, or pg_start failed).
std::string postgres_url(bool create_fresh_db = true);

// A throwaway server of the test's own (not the fixture's), for tests that stop or crash it
// under a running gateway. Started by the constructor (about a second), removed by the
// destructor; each call below returns once the server is down or accepting again. Unlike the
// fixture's, it commits synchronously, so what it acknowledged survives kill_postmaster().
class postgres_server {
public:
    postgres_server();
    ~postgres_server();
    postgres_server(const postgres_server&) = delete;
    postgres_server& operator=(const postgres_server&) = delete;

    // postgresql://aqt:PASSWORD@127.0.0.1:PORT/aqt
    const std::string& url() const noexcept { return url_; }

    // Fast shutdown: open sessions are terminated, the files stay.
    void stop();
    // kill -9 of the postmaster, waiting until its children have exited too.
    void kill_postmaster();
    // Starts again on the same port and data dir (crash recovery after kill_postmaster).
    void start();

private:
    void run(const char* command, const char* option = "");
    std::string state_, url_;
};

}  // namespace aqt
